//! Organizations: the tenant, its plan and limits, and the lists it holds.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use uuid::Uuid;

use crate::domain::contacts as contact_service;
use crate::domain::limits::{self, Limit};
use crate::domain::owner_safety;
use crate::domain::page::{Page, PageRequest};
use crate::domain::{
    DomainError, audit, definitions, documents, invitations as invitation_service, members,
    workspaces as workspace_service,
};
use crate::graphql::connection::{self, connection};
use crate::graphql::context::{access, app, charge, member_access};
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::guards::KeyGuard;
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{MemberBindings, domain_loader_error, loader_error, loaders};
use crate::store::entities::{memberships, organizations, role_bindings, roles};

use super::{
    AuditEvent, AuditEventConnection, AuditFilter, HeldKey, Invitation, InvitationConnection, InvitationStatus,
    Keychain, Membership, MembershipConnection, OwnerSafety, Role, SubscriberContact, SubscriberContactConnection,
    Team, TeamConnection, Workspace, WorkspaceConnection,
};

connection!(
    OrganizationConnection,
    OrganizationEdge,
    Organization,
    "A page of organizations."
);

/// Billing plan of an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The free plan, which every new organization starts on; it has the smallest limits.
    Free,
    /// The plan for teams, with higher limits than FREE.
    Team,
    /// The plan with the highest limits.
    Enterprise,
}

impl Plan {
    pub fn parse(value: &str) -> Plan {
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

pub(super) async fn workspace_in(ctx: &Context<'_>, organization_id: Uuid, id: Option<ID>) -> ApiResult<Option<Uuid>> {
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

/// A tenant: its members, roles, keychains, workspaces, invitations and audit log. Visible only
/// to its members; fields that need a key name it.
#[Object]
impl Organization {
    /// The organization's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Organization, self.0.id)
    }

    /// Unique, URL-safe name: 3 to 40 lower-case letters, digits and hyphens.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The billing plan, which sets the limits in `limits`.
    async fn plan(&self) -> Plan {
        Plan::parse(&self.0.plan)
    }

    /// Whether members need two-factor sign-in on their account: until they turn it on, every
    /// guarded field and mutation here answers TWO_FACTOR_REQUIRED (service accounts are exempt).
    async fn require_two_factor(&self) -> bool {
        self.0.require_two_factor
    }

    /// When the organization was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's own membership; `null` when they are not a member.
    async fn viewer_membership(&self, ctx: &Context<'_>) -> ApiResult<Option<Membership>> {
        let result: ApiResult<Option<Membership>> =
            Box::pin(async move { Ok(access(ctx, self.0.id).await?.map(|a| Membership(a.membership.clone()))) }).await;
        result
    }

    /// Every key the viewer holds here (in a workspace when given): what the app may show.
    async fn viewer_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A workspace of this organization; omit it for the keys held organization-wide.")]
        workspace_id: Option<ID>,
    ) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            let workspace = workspace_in(ctx, self.0.id, workspace_id).await?;
            let Some(access) = access(ctx, self.0.id).await? else {
                return Ok(Vec::new());
            };
            let app = app(ctx);
            Ok(app.catalog.names(&access.keys_at(app, workspace)))
        })
        .await;
        result
    }

    /// Every key the viewer holds here (in a workspace when given), each with when it stops
    /// being held: `viewerKeys` with the ends of grants that last only for a time.
    async fn viewer_held_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A workspace of this organization; omit it for the keys held organization-wide.")]
        workspace_id: Option<ID>,
    ) -> ApiResult<Vec<HeldKey>> {
        let result: ApiResult<Vec<HeldKey>> = Box::pin(async move {
            let workspace = workspace_in(ctx, self.0.id, workspace_id).await?;
            let Some(access) = access(ctx, self.0.id).await? else {
                return Ok(Vec::new());
            };
            let app = app(ctx);
            Ok(access
                .keys_with_ends(app, workspace)
                .into_iter()
                .map(|(key, until)| HeldKey {
                    key: app.catalog.key(key).id.clone(),
                    until,
                })
                .collect())
        })
        .await;
        result
    }

    /// Whether the viewer holds a key here (in a workspace when given).
    async fn viewer_can(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A key of the catalog, e.g. `members.invite`.")] key: String,
        #[graphql(desc = "A workspace of this organization to check inside; omit it for organization-wide.")]
        workspace_id: Option<ID>,
    ) -> ApiResult<bool> {
        let result: ApiResult<bool> = Box::pin(async move {
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
        })
        .await;
        result
    }

    /// Members in the order they joined, optionally filtered (`members.read`; without it `null`,
    /// with a FORBIDDEN error, and the rest of the organization still answers).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"members.read\")")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only members meeting these conditions; all when omitted.")] filter: Option<MemberFilter>,
    ) -> ApiResult<Option<MembershipConnection>> {
        let result: ApiResult<MembershipConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let filter = filter.map(|f| f.into_domain()).transpose()?.unwrap_or_default();
            let app = app(ctx).clone();
            let organization_id = self.0.id;
            let unfiltered = filter == members::MemberFilter::default();
            let page = if unfiltered {
                // Pages of many organizations share one statement.
                let rows = loaders(ctx)
                    .member_pages
                    .load_one((organization_id, request.after, request.first + 1))
                    .await
                    .map_err(loader_error)?
                    .unwrap_or_default();
                Page::from_rows(rows.iter().map(|m| (m.id, m.clone())).collect(), request.first)
            } else {
                members::page(&app, organization_id, &filter, request).await?
            };
            let counter: connection::Counter = if unfiltered {
                let loaders = loaders(ctx).clone();
                Arc::new(move || {
                    let loaders = loaders.clone();
                    async move {
                        let count = loaders.member_counts.load_one(organization_id).await;
                        count
                            .map(Option::unwrap_or_default)
                            .map_err(|e| crate::graphql::loaders::loader_error(e).0)
                    }
                    .boxed()
                })
            } else {
                Arc::new(move || {
                    let app = app.clone();
                    let filter = filter.clone();
                    async move { members::count(&app, organization_id, &filter).await }.boxed()
                })
            };
            let (edges, info) = connection::parts(page, &request, |m| m);
            // What the selection asks of the members is loaded now, for the whole page at once;
            // their fields then find it in the request's loaders.
            prefetch_members(ctx, &edges).await?;
            Ok(MembershipConnection::new(
                (edges.into_iter().map(|(c, m)| (c, Membership(m))).collect(), info),
                counter,
            ))
        })
        .await;
        result.map(Some)
    }

    /// The organization's teams, oldest first (`members.read`; without it `null`, with a
    /// FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"members.read\")")]
    async fn teams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<Option<TeamConnection>> {
        let result: ApiResult<TeamConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let app = app(ctx).clone();
            let organization_id = self.0.id;
            let page = crate::domain::teams::page(&app, organization_id, request).await?;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                async move { crate::domain::teams::count(&app, organization_id).await }.boxed()
            });
            Ok(TeamConnection::new(connection::parts(page, &request, Team), counter))
        })
        .await;
        result.map(Some)
    }

    /// Who did what, newest first (`audit.read`; without it `null`, with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"audit.read\")")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only events meeting these conditions; all when omitted.")] filter: Option<AuditFilter>,
    ) -> ApiResult<Option<AuditEventConnection>> {
        let result: ApiResult<AuditEventConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let filter = filter.map(AuditFilter::into_domain).transpose()?.unwrap_or_default();
            let app = app(ctx).clone();
            let page = audit::page(&app, self.0.id, &filter, request).await?;
            let organization_id = self.0.id;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                let filter = filter.clone();
                async move { audit::count(&app, organization_id, &filter).await }.boxed()
            });
            Ok(AuditEventConnection::new(
                connection::parts(page, &request, AuditEvent),
                counter,
            ))
        })
        .await;
        result.map(Some)
    }

    /// Invitations, oldest first, optionally of one status (`members.invite`; without it `null`,
    /// with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"members.invite\")")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only invitations with this status; all when omitted.")] status: Option<InvitationStatus>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<Option<InvitationConnection>> {
        let result: ApiResult<InvitationConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let status = status.map(InvitationStatus::as_str);
            let app = app(ctx).clone();
            let page = invitation_service::page(&app, self.0.id, status, request).await?;
            let organization_id = self.0.id;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                async move { invitation_service::count(&app, organization_id, status).await }.boxed()
            });
            Ok(InvitationConnection::new(
                connection::parts(page, &request, Invitation),
                counter,
            ))
        })
        .await;
        result.map(Some)
    }

    /// How safe ownership is: owners, the plan's minimum, whether it is at risk, the recovery
    /// contact and any pending recovery (owners only, `organization.transfer`; for anyone else
    /// `null` with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"organization.transfer\")")]
    async fn owner_safety(&self, ctx: &Context<'_>) -> ApiResult<Option<OwnerSafety>> {
        let result: ApiResult<OwnerSafety> =
            Box::pin(async move { Ok(OwnerSafety(owner_safety::safety(app(ctx), &self.0).await?)) }).await;
        result.map(Some)
    }

    /// Subscriber contacts in the order they were added, optionally only those receiving one
    /// notification category (`contacts.read`; without it `null`, with a FORBIDDEN error).
    /// Contacts are never members: `members` does not list them and no limit counts them.
    #[graphql(guard = "KeyGuard::new(self.0.id, \"contacts.read\")")]
    async fn subscriber_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only contacts receiving this notification category (an id of `notificationCategories`).")]
        category: Option<String>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<Option<SubscriberContactConnection>> {
        let result: ApiResult<SubscriberContactConnection> = Box::pin(async move {
            let request = PageRequest::parse(first, after.as_deref())?;
            let app = app(ctx).clone();
            if let Some(category) = &category
                && app.catalog.notification_category(category).is_none()
            {
                return Err(ApiError(DomainError::bad_input(
                    "category",
                    format!("`{category}` is not a notification category of the catalog"),
                )));
            }
            let page = contact_service::page(&app, self.0.id, category.as_deref(), request).await?;
            let organization_id = self.0.id;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                let category = category.clone();
                async move { contact_service::count(&app, organization_id, category.as_deref()).await }.boxed()
            });
            Ok(SubscriberContactConnection::new(
                connection::parts(page, &request, SubscriberContact),
                counter,
            ))
        })
        .await;
        result.map(Some)
    }

    /// Built-in roles, then the organization's custom roles (`roles.read`; without it `null`,
    /// with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"roles.read\")")]
    async fn roles(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<Role>>> {
        let result: ApiResult<Vec<Role>> = Box::pin(async move {
            let rows = definitions::roles_of(&app(ctx).store.conn, self.0.id).await?;
            charge(ctx, rows.len())?;
            Ok(rows.into_iter().map(|r| Role(r, Some(self.0.id))).collect())
        })
        .await;
        result.map(Some)
    }

    /// Built-in keychains, then the organization's custom keychains (`keychains.read`; without
    /// it `null`, with a FORBIDDEN error).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"keychains.read\")")]
    async fn keychains(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<Keychain>>> {
        let result: ApiResult<Vec<Keychain>> = Box::pin(async move {
            let rows = definitions::keychains_of(&app(ctx).store.conn, self.0.id).await?;
            charge(ctx, rows.len())?;
            Ok(rows.into_iter().map(Keychain::from).collect())
        })
        .await;
        result.map(Some)
    }

    /// Workspaces (`workspaces.read`; a member holding it only inside some workspaces sees those).
    async fn workspaces(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<WorkspaceConnection> {
        let result: ApiResult<WorkspaceConnection> = Box::pin(async move {
            let access = member_access(ctx, self.0.id).await?;
            let app = app(ctx).clone();
            let read = app.catalog.lookup("workspaces.read");
            let only = if access.require(&app, "workspaces.read", None).is_ok() {
                None
            } else {
                let visible: Vec<Uuid> = access
                    .bindings
                    .iter()
                    .filter_map(|b| b.binding.workspace_id)
                    .filter(|w| read.is_some_and(|k| access.keys_at(&app, Some(*w)).contains(k)))
                    .collect();
                if visible.is_empty() {
                    return Err(ApiError(DomainError::forbidden_key("workspaces.read")));
                }
                Some(visible)
            };
            let request = PageRequest::parse(first, after.as_deref())?;
            let page = workspace_service::page(&app, self.0.id, only.clone(), request).await?;
            let organization_id = self.0.id;
            let counter: connection::Counter = Arc::new(move || {
                let app = app.clone();
                let only = only.clone();
                async move { workspace_service::count(&app, organization_id, only).await }.boxed()
            });
            Ok(WorkspaceConnection::new(
                connection::parts(page, &request, Workspace),
                counter,
            ))
        })
        .await;
        result
    }

    /// The organization's custom keychains and roles as a document (`roles.read` and
    /// `keychains.read`; without them `null`, with a FORBIDDEN error), and its teams with their
    /// roles and people for readers who also hold `members.read`; `importRoles` reads the same
    /// form.
    #[graphql(guard = "KeyGuard::new(self.0.id, \"roles.read\").and(KeyGuard::new(self.0.id, \"keychains.read\"))")]
    async fn roles_document(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whether to write the document as JSON or YAML.")] format: DocumentFormat,
    ) -> ApiResult<Option<String>> {
        let result: ApiResult<String> = Box::pin(async move {
            let app = app(ctx);
            // Teams name people: only readers who may see members get them.
            let with_teams = member_access(ctx, self.0.id).await?.holds(app, "members.read", None) == Some(true);
            let document = documents::export(&app.store.conn, app, self.0.id, with_teams).await?;
            Ok(documents::render(&document, format.into())?)
        })
        .await;
        result.map(Some)
    }

    /// Use and limit of everything the plan limits.
    async fn limits(&self, ctx: &Context<'_>) -> ApiResult<OrganizationLimits> {
        let result: ApiResult<OrganizationLimits> = Box::pin(async move {
            member_access(ctx, self.0.id).await?;
            let app = app(ctx);
            let mut usage = Vec::new();
            for limit in [
                Limit::Admins,
                Limit::Members,
                Limit::CustomRoles,
                Limit::CustomKeychains,
                Limit::Workspaces,
                Limit::Teams,
            ] {
                usage.push(LimitUsage {
                    used: limits::used(&app.store.conn, app, self.0.id, limit).await? as i64,
                    limit: limits::limit_for(app, &self.0.plan, limit) as i64,
                });
            }
            let [admins, members, custom_roles, custom_keychains, workspaces, teams] = usage
                .try_into()
                .map_err(|_| ApiError(DomainError::Internal("limit usage has six entries".to_owned())))?;
            Ok(OrganizationLimits {
                plan: Plan::parse(&self.0.plan),
                admins,
                members,
                custom_roles,
                custom_keychains,
                workspaces,
                teams,
            })
        })
        .await;
        result
    }
}

/// Ids `id` picks from a page's role bindings, each once.
fn referenced(
    bindings: &HashMap<Uuid, MemberBindings>,
    id: impl Fn(&role_bindings::Model, Option<&roles::Model>) -> Option<Uuid>,
) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = bindings
        .values()
        .flat_map(|list| list.iter())
        .filter_map(|(binding, role)| id(binding, role.as_ref()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Loads, for a page of members, what the selection under it asks for (read with
/// `look_ahead`): their users and role bindings together, then the bindings' workspaces,
/// granters (and whether the viewer may see them) and custom roles' keychains together. Two
/// rounds of batched statements whatever the page size or the nesting; the members' ordinary
/// resolvers then find every row in the request's loaders.
pub(crate) async fn prefetch_members(ctx: &Context<'_>, edges: &[(String, memberships::Model)]) -> ApiResult<()> {
    let look = ctx.look_ahead();
    let nodes = [look.field("edges").field("node"), look.field("nodes")];
    let wants = |field: &str| nodes.iter().any(|n| n.field(field).exists());
    let wants_in_bindings = |path: &[&str]| {
        nodes.iter().any(|n| {
            let mut at = n.field("roleBindings");
            for field in path {
                at = at.field(field);
            }
            at.exists()
        })
    };
    let loaders = loaders(ctx);
    let user_ids: Vec<Uuid> = match wants("user") {
        true => edges.iter().map(|(_, m)| m.user_id).collect(),
        false => Vec::new(),
    };
    let member_ids: Vec<Uuid> = match wants("roleBindings") {
        true => edges.iter().map(|(_, m)| m.id).collect(),
        false => Vec::new(),
    };
    let (users, bindings) = futures_util::join!(
        loaders.users.load_many(&user_ids),
        loaders.role_bindings.load_many(&member_ids)
    );
    users.map_err(loader_error)?;
    let bindings = bindings.map_err(loader_error)?;
    if bindings.is_empty() {
        return Ok(());
    }
    let granters = match wants_in_bindings(&["grantedBy"]) {
        true => referenced(&bindings, |b, _| b.granted_by_user_id),
        false => Vec::new(),
    };
    let workspaces = match wants_in_bindings(&["workspace"]) {
        true => referenced(&bindings, |b, _| b.workspace_id),
        false => Vec::new(),
    };
    let custom_roles = match wants_in_bindings(&["role", "keychains"]) {
        true => referenced(&bindings, |_, role| {
            role.filter(|r| r.organization_id.is_some()).map(|r| r.id)
        }),
        false => Vec::new(),
    };
    let (users, visible, workspaces, keychains) = futures_util::join!(
        loaders.users.load_many(&granters),
        loaders.visible_users.load_many(&granters),
        loaders.workspaces.load_many(&workspaces),
        loaders.role_keychains.load_many(&custom_roles)
    );
    users.map_err(loader_error)?;
    visible.map_err(domain_loader_error)?;
    workspaces.map_err(loader_error)?;
    keychains.map_err(loader_error)?;
    Ok(())
}

/// Narrows `Organization.members`; all given conditions apply.
#[derive(InputObject, Default)]
pub struct MemberFilter {
    /// Members holding this role, at any scope, themselves or through a team.
    pub role_id: Option<ID>,
    /// Members holding a role inside this workspace, themselves or through a team.
    pub workspace_id: Option<ID>,
    /// true: only members without any role; false: only members with one.
    pub unassigned: Option<bool>,
    /// Text found in the member's name or email, ignoring case.
    pub query: Option<String>,
    /// Members of this team.
    pub team_id: Option<ID>,
}

impl MemberFilter {
    fn into_domain(self) -> Result<members::MemberFilter, DomainError> {
        Ok(members::MemberFilter {
            role_id: self
                .role_id
                .map(|id| ids::decode("filter.roleId", NodeKind::Role, &id))
                .transpose()?,
            workspace_id: self
                .workspace_id
                .map(|id| ids::decode("filter.workspaceId", NodeKind::Workspace, &id))
                .transpose()?,
            unassigned: self.unassigned,
            query: self.query,
            team_id: self
                .team_id
                .map(|id| ids::decode("filter.teamId", NodeKind::Team, &id))
                .transpose()?,
        })
    }
}

/// How much of one plan limit is used.
#[derive(SimpleObject, Clone, Copy)]
pub struct LimitUsage {
    /// How many there are now.
    pub used: i64,
    /// The most the plan allows; going past it fails with `LIMIT_EXCEEDED`.
    pub limit: i64,
}

/// An organization's plan limits and their use.
#[derive(SimpleObject)]
pub struct OrganizationLimits {
    /// The plan these limits come from.
    pub plan: Plan,
    /// People holding an admin-class key organization-wide (owners, admins and any custom role
    /// carrying such a key), themselves or through a team.
    pub admins: LimitUsage,
    /// Members plus pending invitations.
    pub members: LimitUsage,
    /// Custom roles of the organization.
    pub custom_roles: LimitUsage,
    /// Custom keychains of the organization.
    pub custom_keychains: LimitUsage,
    /// Workspaces of the organization.
    pub workspaces: LimitUsage,
    /// Teams of the organization.
    pub teams: LimitUsage,
}

/// Serialization of a roles document.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DocumentFormat {
    /// A JSON document.
    Json,
    /// A YAML document.
    Yaml,
}

impl From<DocumentFormat> for documents::Format {
    fn from(f: DocumentFormat) -> Self {
        match f {
            DocumentFormat::Json => documents::Format::Json,
            DocumentFormat::Yaml => documents::Format::Yaml,
        }
    }
}
