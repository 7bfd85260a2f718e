//! Teams and their members and role bindings.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use crate::domain::members;
use crate::domain::page::PageRequest;
use crate::graphql::connection::{self, connection};
use crate::graphql::context::{app, charge};
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::guards::KeyGuard;
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{domain_loader_error, loader_error, loaders};
use crate::store::entities::teams;

use super::organization::prefetch_members;
use super::{Membership, MembershipConnection, Organization, RoleBinding};

connection!(TeamConnection, TeamEdge, Team, "A page of teams.");

/// A named group of an organization's members holding roles together.
pub struct Team(pub teams::Model);

/// A named group of an organization's members. A team holds role bindings as a member does,
/// organization-wide or in one workspace, and every member of the team holds them through it:
/// a member's keys are the union of their own bindings' and their teams'. Ownership stays
/// personal: `owner` is never held through a team. Seen by holders of `members.read`, and by
/// each member in the teams they are in (their own grants name them).
#[Object]
impl Team {
    /// The team's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Team, self.0.id)
    }

    /// The team's name, unique in the organization regardless of case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the team is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// When the team was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the team's name or description last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The organization the team belongs to.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(Organization)
            .ok_or(ApiError(crate::domain::DomainError::NotFound("organization")))
    }

    /// The roles the team holds (in force), organization-wide and per workspace, oldest first;
    /// each member of the team holds them through it.
    async fn role_bindings(&self, ctx: &Context<'_>) -> ApiResult<Vec<RoleBinding>> {
        let rows = loaders(ctx)
            .bindings_of_team
            .load_one(self.0.id)
            .await
            .map_err(domain_loader_error)?
            .unwrap_or_default();
        charge(ctx, rows.len())?;
        Ok(rows
            .iter()
            .map(|row| {
                RoleBinding(
                    crate::domain::teams::as_member_binding(row, uuid::Uuid::nil()),
                    self.0.organization_id,
                    None,
                    Some(self.0.id),
                )
            })
            .collect())
    }

    /// How many members the team has.
    async fn member_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        Ok(loaders(ctx)
            .team_member_counts
            .load_one(self.0.id)
            .await
            .map_err(domain_loader_error)?
            .unwrap_or_default() as i64)
    }

    /// The team's members in the order they joined the organization (`members.read`; without it
    /// `null`, with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.organization_id, \"members.read\")")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<Option<MembershipConnection>> {
        let result: ApiResult<MembershipConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let filter = members::MemberFilter {
                team_id: Some(self.0.id),
                ..Default::default()
            };
            let app = app(ctx).clone();
            let organization_id = self.0.organization_id;
            let page = members::page(&app, organization_id, &filter, request).await?;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                let filter = filter.clone();
                async move { members::count(&app, organization_id, &filter).await }.boxed()
            });
            let (edges, info) = connection::parts(page, &request, |m| m);
            prefetch_members(ctx, &edges).await?;
            Ok(MembershipConnection::new(
                (edges.into_iter().map(|(c, m)| (c, Membership(m))).collect(), info),
                counter,
            ))
        })
        .await;
        result.map(Some)
    }
}
