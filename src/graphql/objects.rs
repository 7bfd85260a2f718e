//! GraphQL object types. Each wraps a row and resolves related objects through loaders.
//!
//! Resolvers that do more than read a field or call a loader run their work in a
//! `Box::pin(async move { .. })`. async-graphql keeps one future per selected field of every
//! object of a response while it waits, each as large as the largest resolver of its type; so
//! one heavy resolver would make every field of a thousand listed members heavy.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Interface, Object, SimpleObject};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::domain::limits::{self, Limit};
use crate::domain::page::{Page, PageRequest};
use crate::domain::{
    DomainError, api_tokens as token_service, audit, definitions, documents, invitations as invitation_service,
    members, organizations as org_service, workspaces as workspace_service,
};
use crate::store::entities::{
    invitations, keychains, memberships, organizations, role_bindings, roles, users, workspaces,
};

use super::connection::{self, connection};
use super::context::{access, app, charge, member_access, principal, require_key};
use super::error::{ApiError, ApiResult};
use super::guards::KeyGuard;
use super::ids::{self, NodeKind};
use super::loaders::{loader_error, loaders};

/// Anything with a global ID.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "The object's global ID: opaque, and accepted by `node(id:)`."
))]
pub enum Node {
    User(User),
    Organization(Organization),
    Membership(Membership),
    Role(Role),
    Keychain(Keychain),
    Workspace(Workspace),
    Invitation(Invitation),
    ApiToken(ApiToken),
    AuditEvent(AuditEvent),
}

/// HUMAN accounts sign in; SERVICE accounts act only through API tokens.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserKind {
    /// A person, who signs in with email and password.
    Human,
    /// A service account of one organization: no email or password, it acts only through API
    /// tokens.
    Service,
}

/// A person or service account.
pub struct User(pub users::Model);

/// The user with this id, if the caller may see them (`domain::members::visible_users`):
/// every field that returns someone other than the viewer goes through here.
pub async fn visible_user(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<User>> {
    let loaders = loaders(ctx);
    let (user, visible) = futures_util::join!(loaders.users.load_one(id), loaders.visible_users.load_one(id));
    if visible.map_err(super::loaders::domain_loader_error)? != Some(true) {
        return Ok(None);
    }
    Ok(user.map_err(loader_error)?.map(|user| User((*user).clone())))
}

/// A person or service account. Visible only to the user themself and to members of an
/// organization they share.
#[Object]
impl User {
    /// The user's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::User, self.0.id)
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// `null` for service accounts.
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Whether this is a person or a service account; it never changes.
    async fn kind(&self) -> UserKind {
        if self.0.kind == "SERVICE" {
            UserKind::Service
        } else {
            UserKind::Human
        }
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The viewer's own API tokens, newest first (revoked ones included).
    async fn api_tokens(&self, ctx: &Context<'_>) -> ApiResult<Vec<ApiToken>> {
        let result: ApiResult<Vec<ApiToken>> = Box::pin(async move {
            self.require_self(ctx, "API tokens")?;
            // A token confined to one organization sees only the tokens of that organization.
            let only = org_service::token_organization(principal(ctx)?);
            let tokens: Vec<ApiToken> = token_service::of_user(app(ctx), self.0.id)
                .await?
                .into_iter()
                .filter(|t| only.is_none_or(|o| t.organization_id == Some(o)))
                .map(ApiToken)
                .collect();
            charge(ctx, tokens.len())?;
            Ok(tokens)
        })
        .await;
        result
    }

    /// Pending invitations addressed to the viewer's email.
    async fn pending_invitations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Invitation>> {
        let result: ApiResult<Vec<Invitation>> = Box::pin(async move {
            self.require_self(ctx, "invitations")?;
            // Invitations lead into other organizations: an account matter, not an API token's.
            if principal(ctx)?.token.is_some() {
                return Ok(Vec::new());
            }
            Ok(invitation_service::pending_for(app(ctx), &self.0)
                .await?
                .into_iter()
                .map(Invitation)
                .collect())
        })
        .await;
        result
    }

    /// The viewer's own organizations, in the order they joined them.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<OrganizationConnection> {
        let result: ApiResult<OrganizationConnection> = Box::pin(async move {
            let viewer = principal(ctx)?;
            if viewer.user.id != self.0.id {
                return Err(ApiError(DomainError::Forbidden {
                    message: "only the viewer's own organizations can be listed".to_owned(),
                    key: None,
                }));
            }
            let request = PageRequest::parse(first, after.as_deref())?;
            let only = org_service::token_organization(viewer);
            let loaders = loaders(ctx).clone();
            let page = loaders
                .member_organizations
                .load_one((viewer.user.id, only, request.after, request.first))
                .await
                .map_err(super::loaders::domain_loader_error)?
                .ok_or(ApiError(DomainError::NotFound("organizations")))?;
            let user = viewer.user.id;
            let counter: connection::Counter = Arc::new(move || {
                let loaders = loaders.clone();
                async move {
                    let count = loaders.member_organization_counts.load_one((user, only)).await;
                    Ok(count.map_err(|e| (*e).clone())?.unwrap_or_default())
                }
                .boxed()
            });
            Ok(OrganizationConnection::new(
                connection::parts(page, &request, Organization),
                counter,
            ))
        })
        .await;
        result
    }
}

connection!(
    OrganizationConnection,
    OrganizationEdge,
    Organization,
    "A page of organizations."
);

impl User {
    fn require_self(&self, ctx: &Context<'_>, what: &str) -> ApiResult<()> {
        if principal(ctx)?.user.id != self.0.id {
            return Err(ApiError(DomainError::Forbidden {
                message: format!("only the viewer's own {what} can be listed"),
                key: None,
            }));
        }
        Ok(())
    }
}

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

/// A tenant: its members, roles, keychains, workspaces, invitations and audit log. Visible only
/// to its members; fields that need a key name it.
#[Object]
impl Organization {
    /// The organization's global ID.
    async fn id(&self) -> ID {
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

    /// Members in the order they joined, optionally filtered (`members.read`).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"members.read\")")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only members meeting these conditions; all when omitted.")] filter: Option<MemberFilter>,
    ) -> ApiResult<MembershipConnection> {
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
                            .map_err(|e| DomainError::Internal(format!("database: {e}")))
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
        result
    }

    /// Who did what, newest first (`audit.read`).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"audit.read\")")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Only events meeting these conditions; all when omitted.")] filter: Option<AuditFilter>,
    ) -> ApiResult<AuditEventConnection> {
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
        result
    }

    /// Invitations, oldest first, optionally of one status (`members.invite`).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"members.invite\")")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only invitations with this status; all when omitted.")] status: Option<InvitationStatus>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<InvitationConnection> {
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
        result
    }

    /// Built-in roles, then the organization's custom roles (`roles.read`).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"roles.read\")")]
    async fn roles(&self, ctx: &Context<'_>) -> ApiResult<Vec<Role>> {
        let result: ApiResult<Vec<Role>> = Box::pin(async move {
            let rows = definitions::roles_of(&app(ctx).store.conn, self.0.id).await?;
            charge(ctx, rows.len())?;
            Ok(rows.into_iter().map(|r| Role(r, Some(self.0.id))).collect())
        })
        .await;
        result
    }

    /// Built-in keychains, then the organization's custom keychains (`keychains.read`).
    #[graphql(guard = "KeyGuard::new(self.0.id, \"keychains.read\")")]
    async fn keychains(&self, ctx: &Context<'_>) -> ApiResult<Vec<Keychain>> {
        let result: ApiResult<Vec<Keychain>> = Box::pin(async move {
            let rows = definitions::keychains_of(&app(ctx).store.conn, self.0.id).await?;
            charge(ctx, rows.len())?;
            Ok(rows.into_iter().map(Keychain).collect())
        })
        .await;
        result
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
    /// `keychains.read`); `importRoles` reads the same form.
    #[graphql(guard = "KeyGuard::new(self.0.id, \"roles.read\").and(KeyGuard::new(self.0.id, \"keychains.read\"))")]
    async fn roles_document(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whether to write the document as JSON or YAML.")] format: DocumentFormat,
    ) -> ApiResult<String> {
        let result: ApiResult<String> = Box::pin(async move {
            let app = app(ctx);
            let document = documents::export(&app.store.conn, app, self.0.id).await?;
            Ok(documents::render(&document, format.into())?)
        })
        .await;
        result
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
            ] {
                usage.push(LimitUsage {
                    used: limits::used(&app.store.conn, app, self.0.id, limit).await? as i64,
                    limit: limits::limit_for(app, &self.0.plan, limit) as i64,
                });
            }
            let [admins, members, custom_roles, custom_keychains, workspaces] = usage
                .try_into()
                .map_err(|_| ApiError(DomainError::Internal("limit usage has five entries".to_owned())))?;
            Ok(OrganizationLimits {
                plan: Plan::parse(&self.0.plan),
                admins,
                members,
                custom_roles,
                custom_keychains,
                workspaces,
            })
        })
        .await;
        result
    }
}

/// Ids `id` picks from a page's role bindings, each once.
fn referenced(
    bindings: &HashMap<Uuid, super::loaders::MemberBindings>,
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
async fn prefetch_members(ctx: &Context<'_>, edges: &[(String, memberships::Model)]) -> ApiResult<()> {
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
    visible.map_err(super::loaders::domain_loader_error)?;
    workspaces.map_err(loader_error)?;
    keychains.map_err(loader_error)?;
    Ok(())
}

connection!(
    MembershipConnection,
    MembershipEdge,
    Membership,
    "A page of memberships."
);
connection!(
    InvitationConnection,
    InvitationEdge,
    Invitation,
    "A page of invitations."
);

/// Narrows `Organization.members`; all given conditions apply.
#[derive(InputObject, Default)]
pub struct MemberFilter {
    /// Members holding this role, at any scope.
    pub role_id: Option<ID>,
    /// Members holding a role inside this workspace.
    pub workspace_id: Option<ID>,
    /// true: only members without any role; false: only members with one.
    pub unassigned: Option<bool>,
    /// Text found in the member's name or email, ignoring case.
    pub query: Option<String>,
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
        })
    }
}

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Sent and not answered yet; it can be accepted until `expiresAt`.
    Pending,
    /// Accepted: the invitee became a member with the offered roles.
    Accepted,
    /// Withdrawn by a member of the organization before it was answered.
    Revoked,
    /// Declined by the invitee.
    Declined,
    /// Not answered before `expiresAt`; it can no longer be accepted, but it can be resent.
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "PENDING",
            InvitationStatus::Accepted => "ACCEPTED",
            InvitationStatus::Revoked => "REVOKED",
            InvitationStatus::Declined => "DECLINED",
            InvitationStatus::Expired => "EXPIRED",
        }
    }

    fn parse(value: &str) -> InvitationStatus {
        match value {
            "ACCEPTED" => InvitationStatus::Accepted,
            "REVOKED" => InvitationStatus::Revoked,
            "DECLINED" => InvitationStatus::Declined,
            "EXPIRED" => InvitationStatus::Expired,
            _ => InvitationStatus::Pending,
        }
    }
}

/// An invitation to join an organization with some role bindings.
pub struct Invitation(pub invitations::Model);

/// An invitation to join an organization with some role bindings. Seen by members holding
/// `members.invite` and by the invitee.
#[Object]
impl Invitation {
    /// The invitation's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Invitation, self.0.id)
    }

    /// The address invited, as entered; only an account with this email (ignoring case) can
    /// accept.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// EXPIRED once past `expiresAt` without an answer.
    async fn status(&self, ctx: &Context<'_>) -> InvitationStatus {
        InvitationStatus::parse(invitation_service::effective_status(&self.0, app(ctx).now()))
    }

    /// When it can no longer be accepted (72 hours after it was last sent, by default).
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When it was first sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Who sent it; `null` once that account is gone, and for an invitee who is not a member
    /// of the organization (they see `inviterName`).
    async fn invited_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.invited_by_user_id else {
            return Ok(None);
        };
        if !self.seen_by_member(ctx).await? {
            return Ok(None);
        }
        visible_user(ctx, id).await
    }

    /// The organization; `null` for an invitee who is not a member (they see
    /// `organizationName`).
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Option<Organization>> {
        if !self.seen_by_member(ctx).await? {
            return Ok(None);
        }
        Ok(loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(Organization))
    }

    /// The role bindings accepting grants; empty for an invitee who is not a member (they see
    /// `offeredRoleNames`), since roles' keys and holders are the organization's business.
    async fn role_bindings(&self, ctx: &Context<'_>) -> ApiResult<Vec<InvitationRoleBinding>> {
        if !self.seen_by_member(ctx).await? {
            return Ok(Vec::new());
        }
        let offers = invitation_service::offers(app(ctx), self.0.id).await?;
        Ok(offers
            .into_iter()
            .map(|o| InvitationRoleBinding(o, self.0.organization_id))
            .collect())
    }

    /// The name of the organization the invitation leads into.
    async fn organization_name(&self, ctx: &Context<'_>) -> ApiResult<String> {
        Ok(loaders(ctx)
            .organizations
            .load_one(self.0.organization_id)
            .await
            .map_err(loader_error)?
            .map(|o| o.name.clone())
            .unwrap_or_default())
    }

    /// The name of whoever sent the invitation; empty once that account is gone.
    async fn inviter_name(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let Some(id) = self.0.invited_by_user_id else {
            return Ok(String::new());
        };
        Ok(loaders(ctx)
            .users
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(|u| u.name.clone())
            .unwrap_or_default())
    }

    /// Names of the roles the invitation offers.
    async fn offered_role_names(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let offers = invitation_service::offers(app(ctx), self.0.id).await?;
        let mut names = Vec::with_capacity(offers.len());
        for offer in offers {
            if let Some(role) = loaders(ctx).roles.load_one(offer.role_id).await.map_err(loader_error)? {
                names.push(role.name.clone());
            }
        }
        Ok(names)
    }
}

impl Invitation {
    /// Whether the caller is a member of the invitation's organization (a manager of it; an
    /// invitee who is not a member sees names only).
    async fn seen_by_member(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        Ok(super::context::access(ctx, self.0.organization_id).await?.is_some())
    }
}

/// A role binding an invitation offers.
pub struct InvitationRoleBinding(pub invitation_service::Offer, pub Uuid);

/// A role binding an invitation offers.
#[Object]
impl InvitationRoleBinding {
    /// The role accepting grants.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        loaders(ctx)
            .roles
            .load_one(self.0.role_id)
            .await
            .map_err(loader_error)?
            .map(|r| Role(r, Some(self.1)))
            .ok_or(ApiError(DomainError::NotFound("role")))
    }

    /// `null` for organization-wide.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        let Some(id) = self.0.workspace_id else { return Ok(None) };
        Ok(loaders(ctx)
            .workspaces
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Workspace))
    }
}
connection!(WorkspaceConnection, WorkspaceEdge, Workspace, "A page of workspaces.");

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
    /// Holders of `owner` and `admin` together.
    pub admins: LimitUsage,
    /// Members plus pending invitations.
    pub members: LimitUsage,
    /// Custom roles of the organization.
    pub custom_roles: LimitUsage,
    /// Custom keychains of the organization.
    pub custom_keychains: LimitUsage,
    /// Workspaces of the organization.
    pub workspaces: LimitUsage,
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

/// A capability of the key catalog.
pub struct Key(pub crate::authz::KeyIndex);

/// A capability of the key catalog, named `area.action` (e.g. `members.invite`). Roles and
/// keychains are made of keys.
#[Object]
impl Key {
    /// E.g. `members.invite`.
    async fn id(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).id.clone()
    }

    /// The group the key belongs to, e.g. `people` or `resources`.
    async fn category(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).category.clone()
    }

    /// What holding the key allows, in words.
    async fn description(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).description.clone()
    }

    /// Only owners can hold it.
    async fn owner_only(&self, ctx: &Context<'_>) -> bool {
        app(ctx).catalog.key(self.0).owner_only
    }

    /// It cannot be granted inside a single workspace.
    async fn organization_wide(&self, ctx: &Context<'_>) -> bool {
        app(ctx).catalog.key(self.0).organization_wide
    }

    /// Keys it implies directly.
    async fn implies(&self, ctx: &Context<'_>) -> Vec<String> {
        let catalog = &app(ctx).catalog;
        catalog
            .key(self.0)
            .implies
            .iter()
            .map(|k| catalog.key(*k).id.clone())
            .collect()
    }
}

/// The answer to "may the caller use this key here?".
#[derive(SimpleObject)]
pub struct Authorization {
    /// Whether the caller holds the key there.
    pub allowed: bool,
    /// Why, in words.
    pub reason: String,
    /// The bindings (and keychains) that allow it; empty when denied.
    pub grants: Vec<Grant>,
}

/// One binding that grants a key, and through which keychain.
pub struct Grant(pub crate::domain::authorize::GrantSource, pub Uuid);

/// One of the caller's role bindings that grants the asked key, and through which keychain.
#[Object]
impl Grant {
    /// The role of the binding.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        loaders(ctx)
            .roles
            .load_one(self.0.role_id)
            .await
            .map_err(loader_error)?
            .map(|r| Role(r, Some(self.1)))
            .ok_or(ApiError(DomainError::NotFound("role")))
    }

    /// `null` for an organization-wide binding.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        let Some(id) = self.0.workspace_id else { return Ok(None) };
        Ok(loaders(ctx)
            .workspaces
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Workspace))
    }

    /// The keychain carrying the key; `null` when the role grants it directly.
    async fn keychain(&self, ctx: &Context<'_>) -> ApiResult<Option<Keychain>> {
        let Some(id) = self.0.keychain_id else { return Ok(None) };
        let row = keychains::Entity::find_by_id(id).one(&app(ctx).store.conn).await?;
        Ok(row.map(Keychain))
    }

    /// The key the role holds: the asked key itself, or one implying it.
    async fn key(&self) -> &str {
        &self.0.via_key
    }
}

/// A user's membership of an organization.
pub struct Membership(pub memberships::Model);

/// A user's membership of an organization, with the roles it holds there.
#[Object]
impl Membership {
    /// The membership's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Membership, self.0.id)
    }

    /// The member: a person or a service account.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        loaders(ctx)
            .users
            .load_one(self.0.user_id)
            .await
            .map_err(loader_error)?
            .map(|user| User((*user).clone()))
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

    /// The roles this member holds, organization-wide and per workspace.
    async fn role_bindings(&self, ctx: &Context<'_>) -> ApiResult<Vec<RoleBinding>> {
        let rows = loaders(ctx)
            .role_bindings
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let organization_id = self.0.organization_id;
        charge(ctx, rows.len())?;
        Ok(rows
            .iter()
            .map(|(binding, role)| RoleBinding(binding.clone(), organization_id, role.clone()))
            .collect())
    }

    /// True when the member holds no role at all.
    async fn unassigned(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let rows = loaders(ctx)
            .role_bindings
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?;
        Ok(rows.is_none_or(|r| r.is_empty()))
    }

    /// When the user became a member.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The member's keys at the organization, or inside one workspace.
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
            let rows = loaders(ctx)
                .role_bindings
                .load_one(self.0.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default();
            let role_ids: Vec<Uuid> = rows.iter().map(|(binding, _)| binding.role_id).collect();
            let sets = loaders(ctx)
                .role_keys
                .load_many(&role_ids)
                .await
                .map_err(super::loaders::domain_loader_error)?;
            let bindings: Vec<crate::authz::Binding<Uuid>> = rows
                .iter()
                .map(|(binding, _)| crate::authz::Binding {
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

/// A role held by a member, organization-wide (`workspace: null`) or in one workspace; the
/// role row comes along when it was loaded with the binding.
pub struct RoleBinding(pub role_bindings::Model, pub Uuid, pub Option<roles::Model>);

/// A role held by a member, organization-wide or inside one workspace.
#[Object]
impl RoleBinding {
    /// The role held.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        let organization_id = self.1;
        if let Some(role) = &self.2 {
            return Ok(Role(role.clone(), Some(organization_id)));
        }
        loaders(ctx)
            .roles
            .load_one(self.0.role_id)
            .await
            .map_err(loader_error)?
            .map(|r| Role(r, Some(organization_id)))
            .ok_or(ApiError(DomainError::NotFound("role")))
    }

    /// The workspace the role is held in; `null` for organization-wide.
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
}

/// BUILT_IN roles and keychains are global and immutable; CUSTOM ones belong to an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DefinitionKind {
    /// Part of the catalog, the same in every organization; it cannot be changed or deleted.
    BuiltIn,
    /// Created by one organization and belonging to it.
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
    /// Only organization-wide.
    Organization,
    /// Only inside a workspace.
    Workspace,
    /// Organization-wide or inside a workspace.
    Any,
}

/// A named set of keychains and keys, seen from an organization (for `holderCount`).
pub struct Role(pub roles::Model, pub Option<Uuid>);

impl Role {
    /// A role seen from its own organization (custom) or from none (built-in).
    pub fn of(row: roles::Model) -> Role {
        let organization = row.organization_id;
        Role(row, organization)
    }
}

/// A named set of keychains and direct keys that members are granted, organization-wide or
/// inside a workspace.
#[Object]
impl Role {
    /// The role's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Role, self.0.id)
    }

    /// The role's name, e.g. `admin`; a custom role's is unique in its organization.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the role is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Whether the role is built in or the organization's own.
    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    /// Where the role may be bound.
    async fn scope(&self) -> RoleScope {
        match self.0.scope.as_str() {
            "ORGANIZATION" => RoleScope::Organization,
            "WORKSPACE" => RoleScope::Workspace,
            _ => RoleScope::Any,
        }
    }

    /// Fewest members that must hold the role organization-wide (1 for `owner`); a revoke or
    /// removal below it fails with `LAST_OWNER`.
    async fn min_holders(&self) -> i32 {
        self.0.min_holders
    }

    /// `null` when only the plan limits it.
    async fn max_holders(&self) -> Option<i32> {
        self.0.max_holders
    }

    /// The keychains the role is made of.
    async fn keychains(&self, ctx: &Context<'_>) -> ApiResult<Vec<Keychain>> {
        // A built-in role's keychains are fixed by the catalog: no loader round trip.
        if let Some(list) = super::loaders::builtin_role_keychains(app(ctx), &self.0.id) {
            return Ok(list.into_iter().map(Keychain).collect());
        }
        let rows = loaders(ctx)
            .role_keychains
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        charge(ctx, rows.len())?;
        Ok(rows.into_iter().map(Keychain).collect())
    }

    /// Keys granted directly, besides those of its keychains.
    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            if app(ctx).builtins.role(&self.0.id).is_some() {
                return Ok(Vec::new());
            }
            Ok(loaders(ctx)
                .role_direct_keys
                .load_one(self.0.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default())
        })
        .await;
        result
    }

    /// Keys of its keychains and direct keys, closed under implication.
    async fn effective_keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            let keys = loaders(ctx)
                .role_keys
                .load_one(self.0.id)
                .await
                .map_err(super::loaders::domain_loader_error)?
                .unwrap_or_default();
            Ok(app(ctx).catalog.names(&keys))
        })
        .await;
        result
    }

    /// Members holding the role organization-wide in the organization it is seen from; `null`
    /// without one (a built-in role looked up by id).
    async fn holder_count(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        let result: ApiResult<Option<i32>> = Box::pin(async move {
            let Some(organization_id) = self.1 else { return Ok(None) };
            let count = loaders(ctx)
                .holder_counts
                .load_one((organization_id, self.0.id))
                .await
                .map_err(super::loaders::domain_loader_error)?
                .unwrap_or(0);
            Ok(Some(count as i32))
        })
        .await;
        result
    }
}

/// A named set of keys.
pub struct Keychain(pub keychains::Model);

/// A named set of keys that roles are built from.
#[Object]
impl Keychain {
    /// The keychain's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Keychain, self.0.id)
    }

    /// The keychain's name; a custom keychain's is unique in its organization.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the keychain is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Whether the keychain is built in or the organization's own.
    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    /// The keys it holds, in catalog order.
    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            let keys = loaders(ctx)
                .keychain_keys
                .load_one(self.0.id)
                .await
                .map_err(super::loaders::domain_loader_error)?
                .unwrap_or_default();
            Ok(app(ctx).catalog.names(&keys))
        })
        .await;
        result
    }

    /// Roles using this keychain: built-in ones, and custom ones of its organization.
    async fn roles(&self, ctx: &Context<'_>) -> ApiResult<Vec<Role>> {
        let result: ApiResult<Vec<Role>> = Box::pin(async move {
            let rows = loaders(ctx)
                .keychain_roles
                .load_one(self.0.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default();
            charge(ctx, rows.len())?;
            // A built-in keychain is shared: show only built-in roles and the viewer's own custom ones.
            let mut visible = Vec::new();
            for row in rows {
                match row.organization_id {
                    None => visible.push(Role::of(row)),
                    Some(org) if access(ctx, org).await?.is_some() => visible.push(Role::of(row)),
                    Some(_) => {}
                }
            }
            Ok(visible)
        })
        .await;
        result
    }
}

/// A project inside an organization.
pub struct Workspace(pub workspaces::Model);

/// A project inside an organization; roles can be granted inside it.
#[Object]
impl Workspace {
    /// The workspace's global ID.
    async fn id(&self) -> ID {
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

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "A page of audit events."
);

/// Most actions one audit filter may name.
const MAX_AUDIT_FILTER_ACTIONS: usize = 50;

/// Narrows the audit log; all given conditions apply.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// Any of these actions, e.g. `role.grant` (at most 50).
    pub actions: Option<Vec<String>>,
    /// Events caused by this user.
    pub actor_id: Option<ID>,
    /// Events about this object (any global ID).
    pub target_id: Option<ID>,
    /// From this time on (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn into_domain(self) -> Result<audit::AuditFilter, DomainError> {
        if let Some(actions) = &self.actions {
            if actions.len() > MAX_AUDIT_FILTER_ACTIONS {
                return Err(DomainError::bad_input(
                    "filter.actions",
                    format!("at most {MAX_AUDIT_FILTER_ACTIONS} actions can be asked for at once"),
                ));
            }
            if actions.iter().any(|a| a.len() > 64) {
                return Err(DomainError::bad_input(
                    "filter.actions",
                    "an action name has at most 64 characters",
                ));
            }
        }
        Ok(audit::AuditFilter {
            actions: self.actions,
            actor_user_id: self
                .actor_id
                .map(|id| ids::decode("filter.actorId", NodeKind::User, &id))
                .transpose()?,
            target_id: self
                .target_id
                .map(|id| {
                    ids::decode_any(&id)
                        .map(|(_, uuid)| uuid)
                        .ok_or_else(|| DomainError::bad_input("filter.targetId", "not a valid ID"))
                })
                .transpose()?,
            since: self.since,
            until: self.until,
        })
    }
}

/// One append-only record of a change, or of a refused one.
pub struct AuditEvent(pub crate::store::entities::audit_events::Model);

/// One append-only record of a change in an organization, or of a refused attempt.
#[Object]
impl AuditEvent {
    /// The event's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::AuditEvent, self.0.id)
    }

    /// What happened, e.g. `role.grant`, `invitation.accept`, `authorization.denied`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// Who did it; `null` for anonymous attempts, deleted accounts and people who no longer
    /// share an organization with the viewer (`actorId` still names them).
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.actor_user_id else {
            return Ok(None);
        };
        visible_user(ctx, id).await
    }

    /// The global ID of the user who acted, even when `actor` is `null` (someone the viewer no
    /// longer shares an organization with).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_user_id.map(|id| ids::encode(NodeKind::User, id))
    }

    /// The API token used, if any.
    async fn actor_token_id(&self) -> Option<ID> {
        self.0.actor_token_id.map(|id| ids::encode(NodeKind::ApiToken, id))
    }

    /// The type of the object acted on, e.g. `Membership`.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }

    /// The global ID of the object acted on (it may no longer exist).
    async fn target_id(&self) -> Option<ID> {
        let kind = self.0.target_type.as_deref().and_then(NodeKind::parse)?;
        self.0.target_id.map(|id| ids::encode(kind, id))
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// What changed; never a password, token or secret.
    async fn details(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::from_str(&self.0.details).unwrap_or(serde_json::Value::Null))
    }

    /// The client address the request came from.
    async fn client_address(&self) -> Option<&str> {
        self.0.client_address.as_deref()
    }

    /// The `User-Agent` header of the request, when it sent one.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// The id of the request that caused it, as errors of that request report it in
    /// `extensions.requestId`.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
}

/// A bearer token for integrations; its secret is shown only when created.
pub struct ApiToken(pub crate::store::entities::api_tokens::Model);

/// A bearer token for integrations; its secret is shown only when it is created. It acts with
/// its user's current keys, narrowed to its organization and keychain when those are set.
#[Object]
impl ApiToken {
    /// The token's global ID.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::ApiToken, self.0.id)
    }

    /// The label given when it was created.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the secret, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// The only organization it may act in; `null` for all of its user's.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .organizations
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Organization))
    }

    /// The keychain limiting its keys; `null` for all of its user's keys.
    async fn keychain(&self, ctx: &Context<'_>) -> ApiResult<Option<Keychain>> {
        let Some(id) = self.0.keychain_id else { return Ok(None) };
        Ok(keychains::Entity::find_by_id(id)
            .one(&app(ctx).store.conn)
            .await?
            .map(Keychain))
    }

    /// When it stops working; `null` for never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Updated at most once a minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was revoked; `null` while it is not.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
