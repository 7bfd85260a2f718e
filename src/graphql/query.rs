//! Root query fields.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use futures_util::FutureExt;
use uuid::Uuid;

use crate::domain::page::PageRequest;
use crate::domain::{
    DomainError, api_tokens as token_service, audit, authorize, definitions, invitations as invitation_service,
    members, organizations as org_service, who_can, workspaces as workspace_service,
};

use super::connection;
use super::context::{access, app, member_access, principal, require_key};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::{
    ApiToken, AuditEvent, Authorization, Grant, Invitation, Key, KeyHolder, KeyHolderConnection, Keychain, Membership,
    Node, NotificationCategory, Organization, Role, SubscriberContact, User, Workspace,
};

pub struct QueryRoot;

/// Largest `nodes(ids:)` request.
const MAX_NODES: usize = 100;

/// Entry points for reading: the signed-in user, their organizations, any object by global
/// ID, the key catalog and permission checks.
#[Object(name = "Query")]
impl QueryRoot {
    /// Any object by global ID; `null` when it does not exist or the viewer may not see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID, as returned in any object's `id`.")] id: ID,
    ) -> ApiResult<Option<Node>> {
        principal(ctx)?;
        resolve_node(ctx, &id).await
    }

    /// Several objects by global ID, in the order asked; `null` for each one not visible.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global IDs to look up, at most 100.")] ids: Vec<ID>,
    ) -> ApiResult<Vec<Option<Node>>> {
        principal(ctx)?;
        if ids.len() > MAX_NODES {
            return Err(
                crate::domain::DomainError::bad_input("ids", format!("at most {MAX_NODES} ids at once")).into(),
            );
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            out.push(resolve_node(ctx, id).await?);
        }
        Ok(out)
    }

    /// The signed-in user.
    async fn viewer(&self, ctx: &Context<'_>) -> ApiResult<User> {
        Ok(User(std::sync::Arc::new(principal(ctx)?.user.clone())))
    }

    /// Every key of the catalog, in catalog order.
    async fn key_catalog(&self, ctx: &Context<'_>) -> Vec<Key> {
        let catalog = &app(ctx).catalog;
        catalog
            .keys()
            .iter()
            .filter_map(|k| catalog.lookup(&k.id))
            .map(Key)
            .collect()
    }

    /// Who would gain and who would lose which keys, at which scope, if a change were made: the
    /// change runs through its own mutation (the same checks, the same rule, the same writes)
    /// and is rolled back. A change the caller may not make is refused here with the same
    /// error. Needs `members.read` in the organization.
    async fn preview_role_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization whose members' keys to compare.")] organization_id: ID,
        #[graphql(desc = "The change, as the input of its mutation.")] change: super::preview::RoleChangeInput,
    ) -> async_graphql::Result<super::preview::RoleChangeImpact> {
        principal(ctx)?;
        super::preview::run(ctx, &organization_id, change).await
    }

    /// The notification categories of the catalog: what subscriber contacts may receive.
    async fn notification_categories(&self, ctx: &Context<'_>) -> Vec<NotificationCategory> {
        let catalog = &app(ctx).catalog;
        catalog
            .notification_categories
            .iter()
            .map(|c| NotificationCategory::of(catalog, c))
            .collect()
    }

    /// May the caller use `key` in the organization (inside a workspace when given)? With the
    /// bindings and keychains that allow it, or the reason it is denied.
    async fn authorize(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization to check in; the caller must be a member of it.")] organization_id: ID,
        #[graphql(desc = "A key of the catalog, e.g. `members.invite`.")] key: String,
        #[graphql(desc = "A workspace of the organization to check inside; omit it for the organization as a whole.")]
        workspace_id: Option<ID>,
    ) -> ApiResult<Authorization> {
        principal(ctx)?;
        let app = app(ctx);
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &organization_id)?;
        let access = member_access(ctx, organization_id).await?;
        let index = app
            .catalog
            .lookup(&key)
            .ok_or_else(|| DomainError::bad_input("key", format!("`{key}` is not a key of the catalog")))?;
        let workspace = match workspace_id {
            None => None,
            Some(id) => {
                let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &id)?;
                match workspace_service::find(app, workspace_id).await? {
                    Some(w) if w.organization_id == organization_id => Some(workspace_id),
                    _ => return Err(DomainError::NotFound("workspace").into()),
                }
            }
        };
        let decision = authorize::decide(&app.store.conn, app, &access, index, workspace).await?;
        // Held until the last grant ends, or without end when any grant lasts.
        let until = if decision.allowed && decision.grants.iter().all(|g| g.binding.expires_at.is_some()) {
            decision.grants.iter().filter_map(|g| g.binding.expires_at).max()
        } else {
            None
        };
        Ok(Authorization {
            allowed: decision.allowed,
            until,
            reason: decision.reason,
            grants: decision.grants.into_iter().map(|g| Grant(g, organization_id)).collect(),
        })
    }

    /// Everyone who holds `key` in the organization (inside a workspace when given), the reverse
    /// of `authorize`: each member and service account with the bindings (their own or their
    /// teams'), keychains and implications that give it the key, in membership order, and the
    /// teams holding it. Needs `members.read`.
    async fn who_can(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization to look in; the caller must hold `members.read` there.")]
        organization_id: ID,
        #[graphql(desc = "A key of the catalog, e.g. `servers.delete`.")] key: String,
        #[graphql(desc = "A workspace of the organization to look inside; omit it for the organization as a whole.")]
        workspace_id: Option<ID>,
        #[graphql(desc = "How many items to return: 20 when omitted, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The cursor to continue after: the `endCursor` of the previous page.")] after: Option<String>,
    ) -> ApiResult<KeyHolderConnection> {
        principal(ctx)?;
        let app = app(ctx).clone();
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &organization_id)?;
        require_key(ctx, organization_id, "members.read", None).await?;
        let key = app
            .catalog
            .lookup(&key)
            .ok_or_else(|| DomainError::bad_input("key", format!("`{key}` is not a key of the catalog")))?;
        let workspace_id = match workspace_id {
            None => None,
            Some(id) => {
                let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &id)?;
                match workspace_service::find(&app, workspace_id).await? {
                    Some(w) if w.organization_id == organization_id => Some(workspace_id),
                    _ => return Err(DomainError::NotFound("workspace").into()),
                }
            }
        };
        let request = PageRequest::parse(first, after.as_deref())?;
        let question = Arc::new(who_can::ask(&app.store.conn, &app, organization_id, key, workspace_id).await?);
        let page = who_can::holders(&app.store.conn, &app, &question, request).await?;
        let counter: connection::Counter = {
            let (app, question) = (app.clone(), question.clone());
            Arc::new(move || {
                let (app, question) = (app.clone(), question.clone());
                async move { who_can::count(&app.store.conn, &app, &question).await }.boxed()
            })
        };
        let teams: crate::graphql::types::key::TeamHolders = Arc::new(move || {
            let (app, question) = (app.clone(), question.clone());
            async move { who_can::teams(&app.store.conn, &app, &question).await }.boxed()
        });
        let (edges, page_info) = connection::parts(page, &request, |holder| KeyHolder(holder, organization_id));
        Ok(KeyHolderConnection {
            edges: edges
                .into_iter()
                .map(|(cursor, node)| crate::graphql::types::KeyHolderEdge { cursor, node })
                .collect(),
            page_info,
            counter,
            teams,
            organization_id,
        })
    }

    /// An organization the viewer belongs to; `null` otherwise.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization's slug, e.g. `acme`.")] slug: String,
    ) -> ApiResult<Option<Organization>> {
        principal(ctx)?;
        let Some(organization) = super::loaders::loaders(ctx)
            .organizations_by_slug
            .load_one(slug)
            .await
            .map_err(super::loaders::loader_error)?
        else {
            return Ok(None);
        };
        // Membership is decided by the same batched access load the guards use.
        Ok(access(ctx, organization.id).await?.map(|_| Organization(organization)))
    }
}

async fn can_see(ctx: &Context<'_>, organization_id: Uuid, key: &str) -> ApiResult<bool> {
    let Some(access) = access(ctx, organization_id).await? else {
        return Ok(false);
    };
    // A visibility probe, not a decision the caller asked for: not counted in the metrics.
    Ok(access.holds(app(ctx), key, None) == Some(true))
}

/// Visibility rules of `node`: nothing of an organization the viewer is not in, and inside
/// it only what the viewer's keys allow reading.
async fn resolve_node(ctx: &Context<'_>, id: &ID) -> ApiResult<Option<Node>> {
    let Some((kind, uuid)) = ids::decode_any(id) else {
        return Ok(None);
    };
    let app = app(ctx);
    let viewer = principal(ctx)?;
    // A token confined to one organization sees nothing of any other, its user's own things
    // included.
    let confined = org_service::token_organization(viewer);
    let within = |organization_id: Option<Uuid>| confined.is_none_or(|only| organization_id == Some(only));
    Ok(match kind {
        NodeKind::User => super::types::visible_user(ctx, uuid).await?.map(Node::User),
        NodeKind::Organization => org_service::find_by_id_for(app, viewer, uuid)
            .await?
            .map(|o| Node::Organization(Organization(o))),
        NodeKind::Membership => match members::find(app, uuid).await? {
            Some(m)
                if (m.user_id == viewer.user.id && within(Some(m.organization_id)))
                    || can_see(ctx, m.organization_id, "members.read").await? =>
            {
                Some(Node::Membership(Membership(m)))
            }
            _ => None,
        },
        NodeKind::Role => match definitions::role_by_id(app, uuid).await? {
            Some(r) if r.organization_id.is_none() => Some(Node::Role(Role::of(r))),
            Some(r) if can_see(ctx, r.organization_id.unwrap_or_default(), "roles.read").await? => {
                Some(Node::Role(Role::of(r)))
            }
            _ => None,
        },
        NodeKind::Keychain => match definitions::keychain_by_id(app, uuid).await? {
            Some(k) if k.organization_id.is_none() => Some(Node::Keychain(Keychain::from(k))),
            Some(k) if can_see(ctx, k.organization_id.unwrap_or_default(), "keychains.read").await? => {
                Some(Node::Keychain(Keychain::from(k)))
            }
            _ => None,
        },
        NodeKind::ApiToken => match token_service::find(app, uuid).await? {
            Some(t) if t.user_id == viewer.user.id && within(t.organization_id) => Some(Node::ApiToken(ApiToken(t))),
            Some(t)
                if t.organization_id.is_some()
                    && can_see(ctx, t.organization_id.unwrap_or_default(), "tokens.manage").await? =>
            {
                Some(Node::ApiToken(ApiToken(t)))
            }
            _ => None,
        },
        NodeKind::AuditEvent => match audit::find(app, uuid).await? {
            Some(e)
                if e.organization_id.is_some()
                    && can_see(ctx, e.organization_id.unwrap_or_default(), "audit.read").await? =>
            {
                Some(Node::AuditEvent(AuditEvent(e)))
            }
            _ => None,
        },
        NodeKind::Invitation => match invitation_service::find(app, uuid).await? {
            Some(i)
                if (viewer.token.is_none()
                    && viewer.user.email_canonical.as_deref() == Some(i.email_canonical.as_str()))
                    || can_see(ctx, i.organization_id, "members.invite").await? =>
            {
                Some(Node::Invitation(Invitation(i)))
            }
            _ => None,
        },
        NodeKind::SubscriberContact => match crate::domain::contacts::find(app, uuid).await? {
            Some(c) if can_see(ctx, c.row.organization_id, "contacts.read").await? => {
                Some(Node::SubscriberContact(SubscriberContact(c)))
            }
            _ => None,
        },
        // Sessions are listed on `viewer.sessions` only.
        NodeKind::Session => None,
        NodeKind::Team => match crate::domain::teams::find(app, uuid).await? {
            Some(t) if can_see(ctx, t.organization_id, "members.read").await? => {
                Some(Node::Team(super::types::Team(t)))
            }
            _ => None,
        },
        NodeKind::Workspace => match workspace_service::find(app, uuid).await? {
            Some(w) if can_see(ctx, w.organization_id, "workspaces.read").await? => Some(Node::Workspace(Workspace(w))),
            _ => None,
        },
    })
}
