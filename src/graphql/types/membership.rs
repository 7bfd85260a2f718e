//! Memberships and the role bindings they hold.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::graphql::connection::connection;
use crate::graphql::context::{app, charge, principal, require_key};
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{domain_loader_error, loader_error, loaders};
use crate::store::entities::{memberships, role_bindings, roles};

use super::organization::workspace_in;
use super::{Organization, Role, Team, User, Workspace, visible_user};

connection!(
    MembershipConnection,
    MembershipEdge,
    Membership,
    "A page of memberships."
);

/// A user's membership of an organization.
pub struct Membership(pub memberships::Model);

/// A user's membership of an organization, with the roles it holds there.
#[Object]
impl Membership {
    /// The membership's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Membership, self.0.id)
    }

    /// The member: a person or a service account.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        loaders(ctx)
            .users
            .load_one(self.0.user_id)
            .await
            .map_err(loader_error)?
            .map(User)
            .ok_or(ApiError(DomainError::NotFound("user")))
    }

    /// The organization the membership is in.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(Organization)
            .ok_or(ApiError(DomainError::NotFound("organization")))
    }

    /// The roles this member holds themself, organization-wide and per workspace (those held
    /// through teams are on each of `teams`).
    async fn role_bindings(&self, ctx: &Context<'_>) -> ApiResult<Vec<RoleBinding>> {
        let rows = loaders(ctx)
            .role_bindings
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let organization_id = self.0.organization_id;
        // A binding that has ended is gone from that instant, before the sweeper removes it.
        let now = app(ctx).now();
        let rows: Vec<_> = rows
            .iter()
            .filter(|(binding, _)| crate::domain::bindings::in_force(binding, now))
            .collect();
        charge(ctx, rows.len())?;
        Ok(rows
            .into_iter()
            .map(|(binding, role)| RoleBinding(binding.clone(), organization_id, role.clone(), None))
            .collect())
    }

    /// True when the member holds no role at all, neither their own nor through a team.
    async fn unassigned(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let (rows, through_teams) = futures_util::join!(
            loaders(ctx).role_bindings.load_one(self.0.id),
            loaders(ctx).team_bindings.load_one(self.0.id)
        );
        let rows = rows.map_err(loader_error)?;
        let through_teams = through_teams.map_err(domain_loader_error)?;
        let now = app(ctx).now();
        let in_force = |b: &role_bindings::Model| crate::domain::bindings::in_force(b, now);
        Ok(rows.is_none_or(|r| !r.iter().any(|(b, _)| in_force(b)))
            && through_teams.is_none_or(|r| !r.iter().any(|(_, b)| in_force(b))))
    }

    /// The teams the member is in, in the order they were created (`members.read`, or the
    /// member themself; otherwise `null`, with a FORBIDDEN error).
    async fn teams(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<Team>>> {
        let result: ApiResult<Vec<Team>> = Box::pin(async move {
            if principal(ctx)?.user.id != self.0.user_id {
                require_key(ctx, self.0.organization_id, "members.read", None).await?;
            }
            let rows = loaders(ctx)
                .member_teams
                .load_one(self.0.id)
                .await
                .map_err(domain_loader_error)?
                .unwrap_or_default();
            charge(ctx, rows.len())?;
            Ok(rows.into_iter().map(Team).collect())
        })
        .await;
        result.map(Some)
    }

    /// When the user became a member.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The member's keys at the organization, or inside one workspace: those of their own
    /// bindings and of their teams'.
    async fn effective_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A workspace of the organization; omit it for the keys held organization-wide.")]
        workspace_id: Option<ID>,
    ) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            if principal(ctx)?.user.id != self.0.user_id {
                require_key(ctx, self.0.organization_id, "members.read", None).await?;
            }
            let workspace = workspace_in(ctx, self.0.organization_id, workspace_id).await?;
            let app = app(ctx);
            // From the batched bindings and role key sets: a page of members costs the same few
            // statements whatever its length, not one access load per row.
            let (rows, through_teams) = futures_util::join!(
                loaders(ctx).role_bindings.load_one(self.0.id),
                loaders(ctx).team_bindings.load_one(self.0.id)
            );
            let rows = rows.map_err(loader_error)?.unwrap_or_default();
            let through_teams = through_teams.map_err(domain_loader_error)?.unwrap_or_default();
            let now = app.now();
            let rows: Vec<&role_bindings::Model> = rows
                .iter()
                .map(|(binding, _)| binding)
                .chain(through_teams.iter().map(|(_, binding)| binding))
                .filter(|binding| crate::domain::bindings::in_force(binding, now))
                .collect();
            let role_ids: Vec<Uuid> = rows.iter().map(|binding| binding.role_id).collect();
            let sets = loaders(ctx)
                .role_keys
                .load_many(&role_ids)
                .await
                .map_err(domain_loader_error)?;
            let bindings: Vec<crate::authz::Binding<Uuid>> = rows
                .iter()
                .map(|binding| crate::authz::Binding {
                    keys: sets.get(&binding.role_id).copied().unwrap_or_default(),
                    workspace: binding.workspace_id,
                })
                .collect();
            Ok(app
                .catalog
                .names(&crate::authz::keys_at(&app.catalog, &bindings, workspace.as_ref())))
        })
        .await;
        result
    }
}

/// A role held by a member or a team, organization-wide (`workspace: null`) or in one
/// workspace: the binding, its organization, the role row when it was loaded with the binding,
/// and the team holding it (`None` for a member's own).
pub struct RoleBinding(
    pub role_bindings::Model,
    pub Uuid,
    pub Option<roles::Model>,
    pub Option<Uuid>,
);

/// A role held by a member or a team, organization-wide or inside one workspace.
#[Object]
impl RoleBinding {
    /// The team holding the binding, through which each of its members holds the role; `null`
    /// for a member's own binding.
    async fn team(&self, ctx: &Context<'_>) -> ApiResult<Option<Team>> {
        let Some(team_id) = self.3 else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .teams
            .load_one(team_id)
            .await
            .map_err(loader_error)?
            .map(Team))
    }

    /// The role held.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        let organization_id = self.1;
        if let Some(role) = &self.2 {
            return Ok(Role(role.clone(), Some(organization_id)));
        }
        Role::load(ctx, self.0.role_id, organization_id).await
    }

    /// The workspace the role is held in; `null` for organization-wide.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        Workspace::load(ctx, self.0.workspace_id).await
    }

    /// Who granted it; `null` once that account is gone or no longer shares an organization
    /// with the viewer.
    async fn granted_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.granted_by_user_id else {
            return Ok(None);
        };
        visible_user(ctx, id).await
    }

    /// When the role was granted.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }

    /// When the grant ends; `null` for one that lasts until revoked.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Why it was granted, as the granter put it; `null` when no reason was given.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}
