//! Workspaces: projects inside an organization.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::domain::DomainError;
use crate::graphql::connection::connection;
use crate::graphql::context::member_access;
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{loader_error, loaders};
use crate::store::entities::workspaces;

use super::Organization;

connection!(WorkspaceConnection, WorkspaceEdge, Workspace, "A page of workspaces.");

/// A project inside an organization.
pub struct Workspace(pub workspaces::Model);

impl Workspace {
    /// The workspace a binding, an offer or a grant is scoped to; `None` for organization-wide.
    pub(crate) async fn load(ctx: &Context<'_>, id: Option<uuid::Uuid>) -> ApiResult<Option<Workspace>> {
        let Some(id) = id else { return Ok(None) };
        Ok(loaders(ctx)
            .workspaces
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Workspace))
    }
}

/// A project inside an organization; roles can be granted inside it.
#[Object]
impl Workspace {
    /// The workspace's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Workspace, self.0.id)
    }

    /// Unique in its organization: 3 to 40 lower-case letters, digits and hyphens.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the workspace is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The organization it belongs to.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        member_access(ctx, self.0.organization_id).await?;
        loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(Organization)
            .ok_or(ApiError(DomainError::NotFound("organization")))
    }

    /// When the workspace was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
