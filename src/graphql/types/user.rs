//! Users: people and service accounts.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use uuid::Uuid;

use crate::domain::page::PageRequest;
use crate::domain::{
    DomainError, api_tokens as token_service, invitations as invitation_service, organizations as org_service,
};
use crate::graphql::connection;
use crate::graphql::context::{app, charge, principal};
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{domain_loader_error, loader_error, loaders};
use crate::store::entities::users;

use super::{ApiToken, Invitation, Organization, OrganizationConnection};

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
pub struct User(pub Arc<users::Model>);

/// A signed-in device of the viewer's.
pub struct Session {
    row: crate::store::entities::sessions::Model,
    current: bool,
}

/// A signed-in device: a session started by `logIn` and kept by `refreshSession`.
#[Object]
impl Session {
    /// The session's ID, for `endSession`.
    async fn id(&self) -> ID {
        ids::encode(NodeKind::Session, self.row.id)
    }

    /// When the device signed in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// When the device last refreshed its credentials.
    async fn last_used_at(&self) -> DateTime<Utc> {
        self.row.refreshed_at
    }

    /// When the session ends unless refreshed.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.row.expires_at
    }

    /// The client address it signed in from, as the server saw it.
    async fn client_address(&self) -> Option<&str> {
        self.row.client_address.as_deref()
    }

    /// The user agent it signed in with.
    async fn user_agent(&self) -> Option<&str> {
        self.row.user_agent.as_deref()
    }

    /// Whether this is the session of the request asking.
    async fn current(&self) -> bool {
        self.current
    }
}

/// The user with this id, if the caller may see them (`domain::members::visible_users`):
/// every field that returns someone other than the viewer goes through here.
pub async fn visible_user(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<User>> {
    let loaders = loaders(ctx);
    let (user, visible) = futures_util::join!(loaders.users.load_one(id), loaders.visible_users.load_one(id));
    if visible.map_err(domain_loader_error)? != Some(true) {
        return Ok(None);
    }
    Ok(user.map_err(loader_error)?.map(User))
}

/// A person or service account. Visible only to the user themself and to members of an
/// organization they share.
#[Object]
impl User {
    /// The user's global ID.
    pub(crate) async fn id(&self) -> ID {
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

    /// Whether the person proved they receive mail at `email` (`verifyEmail`); until then they
    /// can sign in but not create organizations or accept invitations. Always false for service
    /// accounts, which have no address.
    async fn email_verified(&self) -> bool {
        self.0.email_verified_at.is_some()
    }

    /// Whether signing in takes a second factor (an authenticator app's code); always false for
    /// service accounts.
    async fn two_factor_enabled(&self) -> bool {
        self.0.totp_enabled_at.is_some()
    }

    /// The viewer's unused recovery codes (`null`, with a FORBIDDEN error, for anyone else).
    async fn recovery_codes_left(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        let result: ApiResult<i32> = Box::pin(async move {
            self.require_self(ctx, "recovery codes")?;
            Ok(crate::domain::two_factor::recovery_codes_left(app(ctx), self.0.id).await? as i32)
        })
        .await;
        result.map(Some)
    }

    /// The viewer's signed-in devices: live sessions, most recently used first (a signed-in
    /// session only: `null`, with a FORBIDDEN error, through an API token or for anyone else).
    async fn sessions(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<Session>>> {
        let result: ApiResult<Vec<Session>> = Box::pin(async move {
            self.require_self(ctx, "sessions")?;
            let viewer = principal(ctx)?;
            let rows = crate::domain::self_service::sessions_of(app(ctx), viewer).await?;
            charge(ctx, rows.len())?;
            Ok(rows
                .into_iter()
                .map(|row| Session {
                    current: viewer.session_id == Some(row.id),
                    row,
                })
                .collect())
        })
        .await;
        result.map(Some)
    }

    /// Pending invitations addressed to the viewer's email (none until the address is verified).
    async fn pending_invitations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Invitation>> {
        let result: ApiResult<Vec<Invitation>> = Box::pin(async move {
            self.require_self(ctx, "invitations")?;
            // Invitations lead into other organizations: an account matter, not an API token's.
            // So are they until the address is proved: a squatter sees none.
            let viewer = principal(ctx)?;
            if viewer.token.is_some() || crate::domain::self_service::require_verified(viewer, "invitations").is_err() {
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
                .map_err(domain_loader_error)?
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
