//! GraphQL object types. Each wraps a row and resolves related objects through loaders.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Interface, Object};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::domain::page::PageRequest;
use crate::domain::{DomainError, organizations as org_service};
use crate::store::entities::{
    keychains, memberships, organizations, role_bindings, role_keychains, roles, users, workspaces,
};

use super::connection::{self, connection};
use super::context::{access, app, member_access, principal};
use super::error::{ApiError, ApiResult};
use super::ids::{self, NodeKind};
use super::loaders::{loader_error, loaders};

/// Anything with a global ID.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    User(User),
    Organization(Organization),
    Membership(Membership),
    Role(Role),
    Keychain(Keychain),
    Workspace(Workspace),
}

/// HUMAN accounts sign in; SERVICE accounts act only through API tokens.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserKind {
    Human,
    Service,
}

/// A person or service account.
pub struct User(pub users::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::User, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// `null` for service accounts.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    async fn kind(&self) -> UserKind {
        if self.0.kind == "SERVICE" {
            UserKind::Service
        } else {
            UserKind::Human
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's own organizations, in the order they joined them.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<OrganizationConnection> {
        let viewer = principal(ctx)?;
        if viewer.user.id != self.0.id {
            return Err(ApiError(DomainError::Forbidden {
                message: "only the viewer's own organizations can be listed".to_owned(),
                key: None,
            }));
        }
        let request = PageRequest::parse(first, after.as_deref())?;
        let app = app(ctx).clone();
        let page = org_service::page_for_user(&app, self.0.id, request).await?;
        let user_id = self.0.id;
        let counter: connection::Counter = Arc::new(move || {
            let app = app.clone();
            async move { org_service::count_for_user(&app, user_id).await }.boxed()
        });
        Ok(OrganizationConnection::new(
            connection::parts(page, &request, Organization),
            counter,
        ))
    }
}

connection!(
    OrganizationConnection,
    OrganizationEdge,
    Organization,
    "A page of organizations."
);

/// Billing plan of an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Free,
    Team,
    Enterprise,
}

impl Plan {
    fn parse(value: &str) -> Plan {
        match value {
            "TEAM" => Plan::Team,
            "ENTERPRISE" => Plan::Enterprise,
            _ => Plan::Free,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "FREE",
            Plan::Team => "TEAM",
            Plan::Enterprise => "ENTERPRISE",
        }
    }
}

/// A tenant: its members, roles, keychains and workspaces.
pub struct Organization(pub organizations::Model);

async fn workspace_in(ctx: &Context<'_>, organization_id: Uuid, id: Option<ID>) -> ApiResult<Option<Uuid>> {
    let Some(id) = id else { return Ok(None) };
    let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &id)?;
    let workspace = loaders(ctx)
        .workspaces
        .load_one(workspace_id)
        .await
        .map_err(loader_error)?;
    match workspace {
        Some(w) if w.organization_id == organization_id => Ok(Some(workspace_id)),
        _ => Err(ApiError(DomainError::NotFound("workspace"))),
    }
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Organization, self.0.id)
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn plan(&self) -> Plan {
        Plan::parse(&self.0.plan)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's own membership; `null` when they are not a member.
    async fn viewer_membership(&self, ctx: &Context<'_>) -> ApiResult<Option<Membership>> {
        Ok(access(ctx, self.0.id).await?.map(|a| Membership(a.membership.clone())))
    }

    /// Every key the viewer holds here (in a workspace when given): what the app may show.
    async fn viewer_keys(&self, ctx: &Context<'_>, workspace_id: Option<ID>) -> ApiResult<Vec<String>> {
        let workspace = workspace_in(ctx, self.0.id, workspace_id).await?;
        let Some(access) = access(ctx, self.0.id).await? else {
            return Ok(Vec::new());
        };
        let app = app(ctx);
        Ok(app.catalog.names(&access.keys_at(app, workspace)))
    }

    /// Whether the viewer holds a key here (in a workspace when given).
    async fn viewer_can(&self, ctx: &Context<'_>, key: String, workspace_id: Option<ID>) -> ApiResult<bool> {
        let app = app(ctx);
        let index = app.catalog.lookup(&key).ok_or_else(|| {
            ApiError(DomainError::bad_input(
                "key",
                format!("`{key}` is not a key of the catalog"),
            ))
        })?;
        let workspace = workspace_in(ctx, self.0.id, workspace_id).await?;
        let Some(access) = access(ctx, self.0.id).await? else {
            return Ok(false);
        };
        Ok(access.keys_at(app, workspace).contains(index))
    }
}

/// A user's membership of an organization.
pub struct Membership(pub memberships::Model);

#[Object]
impl Membership {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Membership, self.0.id)
    }

    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        loaders(ctx)
            .users
            .load_one(self.0.user_id)
            .await
            .map_err(loader_error)?
            .map(User)
            .ok_or(ApiError(DomainError::NotFound("user")))
    }

    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(Organization)
            .ok_or(ApiError(DomainError::NotFound("organization")))
    }

    /// The roles this member holds, organization-wide and per workspace.
    async fn role_bindings(&self, ctx: &Context<'_>) -> ApiResult<Vec<RoleBinding>> {
        let rows = role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.eq(self.0.id))
            .order_by_asc(role_bindings::Column::Id)
            .all(&app(ctx).store.conn)
            .await?;
        Ok(rows.into_iter().map(RoleBinding).collect())
    }

    /// True when the member holds no role at all.
    async fn unassigned(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let count = role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.eq(self.0.id))
            .all(&app(ctx).store.conn)
            .await?
            .len();
        Ok(count == 0)
    }

    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The member's keys at the organization, or inside one workspace.
    async fn effective_keys(&self, ctx: &Context<'_>, workspace_id: Option<ID>) -> ApiResult<Vec<String>> {
        let workspace = workspace_in(ctx, self.0.organization_id, workspace_id).await?;
        let app = app(ctx);
        let access = crate::domain::access::load(&app.store.conn, app, self.0.user_id, self.0.organization_id)
            .await?
            .ok_or(ApiError(DomainError::NotFound("membership")))?;
        Ok(app.catalog.names(&access.keys_at(app, workspace)))
    }
}

/// A role held by a member, organization-wide (`workspace: null`) or in one workspace.
pub struct RoleBinding(pub role_bindings::Model);

#[Object]
impl RoleBinding {
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        loaders(ctx)
            .roles
            .load_one(self.0.role_id)
            .await
            .map_err(loader_error)?
            .map(Role)
            .ok_or(ApiError(DomainError::NotFound("role")))
    }

    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        let Some(id) = self.0.workspace_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .workspaces
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Workspace))
    }

    /// Who granted it; `null` once that account is gone.
    async fn granted_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.granted_by_user_id else {
            return Ok(None);
        };
        Ok(loaders(ctx).users.load_one(id).await.map_err(loader_error)?.map(User))
    }

    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }
}

/// BUILT_IN roles and keychains are global and immutable; CUSTOM ones belong to an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DefinitionKind {
    BuiltIn,
    Custom,
}

fn kind_of(value: &str) -> DefinitionKind {
    if value == "BUILT_IN" {
        DefinitionKind::BuiltIn
    } else {
        DefinitionKind::Custom
    }
}

/// Where a role may be bound.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RoleScope {
    Organization,
    Workspace,
    Any,
}

/// A named set of keychains and keys.
pub struct Role(pub roles::Model);

#[Object]
impl Role {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Role, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    async fn scope(&self) -> RoleScope {
        match self.0.scope.as_str() {
            "ORGANIZATION" => RoleScope::Organization,
            "WORKSPACE" => RoleScope::Workspace,
            _ => RoleScope::Any,
        }
    }

    async fn min_holders(&self) -> i32 {
        self.0.min_holders
    }

    /// `null` when only the plan limits it.
    async fn max_holders(&self) -> Option<i32> {
        self.0.max_holders
    }

    async fn keychains(&self, ctx: &Context<'_>) -> ApiResult<Vec<Keychain>> {
        let app = app(ctx);
        let links = role_keychains::Entity::find()
            .filter(role_keychains::Column::RoleId.eq(self.0.id))
            .all(&app.store.conn)
            .await?;
        let ids: Vec<Uuid> = match app.builtins.role(&self.0.id) {
            Some(i) => app.catalog.roles[i]
                .keychains
                .iter()
                .map(|k| crate::domain::builtins::keychain_id(&app.catalog.keychains[*k].name))
                .collect(),
            None => links.into_iter().map(|l| l.keychain_id).collect(),
        };
        let rows = keychains::Entity::find()
            .filter(keychains::Column::Id.is_in(ids))
            .order_by_asc(keychains::Column::Name)
            .all(&app.store.conn)
            .await?;
        Ok(rows.into_iter().map(Keychain).collect())
    }

    /// Keys granted directly, besides those of its keychains.
    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let app = app(ctx);
        if app.builtins.role(&self.0.id).is_some() {
            return Ok(Vec::new());
        }
        let rows = crate::store::entities::role_keys::Entity::find()
            .filter(crate::store::entities::role_keys::Column::RoleId.eq(self.0.id))
            .all(&app.store.conn)
            .await?;
        let mut keys: Vec<String> = rows.into_iter().map(|r| r.key).collect();
        keys.sort();
        Ok(keys)
    }

    /// Keys of its keychains and direct keys, closed under implication.
    async fn effective_keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let app = app(ctx);
        let sets = crate::domain::access::role_key_sets(&app.store.conn, app, &[self.0.id]).await?;
        Ok(app.catalog.names(&sets.get(&self.0.id).copied().unwrap_or_default()))
    }
}

/// A named set of keys.
pub struct Keychain(pub keychains::Model);

#[Object]
impl Keychain {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Keychain, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let app = app(ctx);
        let sets = crate::domain::access::keychain_key_sets(&app.store.conn, app, &[self.0.id]).await?;
        Ok(app.catalog.names(&sets.get(&self.0.id).copied().unwrap_or_default()))
    }
}

/// A project inside an organization.
pub struct Workspace(pub workspaces::Model);

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Workspace, self.0.id)
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

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

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
