//! Invitations and the role bindings they offer.
use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::invitations as invitation_service;
use crate::graphql::connection::connection;
use crate::graphql::context::{access, app};
use crate::graphql::error::ApiResult;
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{loader_error, loaders};
use crate::store::entities::invitations;

use super::{Organization, Role, User, Workspace, visible_user};

connection!(
    InvitationConnection,
    InvitationEdge,
    Invitation,
    "A page of invitations."
);

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
    pub(crate) async fn id(&self) -> ID {
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
        Ok(access(ctx, self.0.organization_id).await?.is_some())
    }
}

/// A role binding an invitation offers.
pub struct InvitationRoleBinding(pub invitation_service::Offer, pub Uuid);

/// A role binding an invitation offers.
#[Object]
impl InvitationRoleBinding {
    /// The role accepting grants.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        Role::load(ctx, self.0.role_id, self.1).await
    }

    /// `null` for organization-wide.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        Workspace::load(ctx, self.0.workspace_id).await
    }

    /// When the binding granted from this offer ends; `null` for lasting until revoked. Past
    /// this instant, accepting the invitation no longer grants it.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
}
