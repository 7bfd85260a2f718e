//! Mutations of the membership lifecycle: invitations, removal, leaving, ownership transfer.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::invitations::{self as invitation_service, Issued, Offer};
use crate::domain::members;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::mutation::AuthPayload;
use super::types::{Invitation, Membership};

/// Invitations and membership changes.
#[derive(Default)]
pub struct MemberMutations;

/// A role binding to offer or grant: organization-wide when `workspaceId` is null.
#[derive(InputObject)]
pub struct RoleBindingInput {
    /// A built-in role or a custom role of the organization.
    pub role_id: ID,
    /// A workspace of the organization to bind the role inside; `null` for organization-wide.
    pub workspace_id: Option<ID>,
    /// When the binding ends (from that instant it grants nothing); `null` for lasting until
    /// revoked. In the future, at most ten years ahead, never for `owner`. An invitation offer
    /// whose end passes before it is accepted grants nothing.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Whom to invite into which organization, with which roles.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// The organization to invite into.
    pub organization_id: ID,
    /// The address to invite; the invitation is mailed there.
    pub email: String,
    /// What accepting grants; `member` when empty.
    #[graphql(default)]
    pub role_bindings: Vec<RoleBindingInput>,
}

per_mutation! {
    SimpleObject,
    /// A sent invitation and its link.
    IssuedInvitation {
        /// The invitation, PENDING until `expiresAt`.
        invitation: Invitation,
        /// The link to send; it holds the invitation's one-time token.
        accept_url: String,
    }
    /// The result of `inviteMember`: the invitation and the link to send.
    InviteMemberPayload,
    /// The result of `resendInvitation`: the invitation with its new expiry and the new link.
    ResendInvitationPayload,
}

per_mutation! {
    InputObject,
    /// Names one invitation.
    InvitationIdInput {
        /// The invitation to act on.
        invitation_id: ID,
    }
    /// The invitation to resend.
    ResendInvitationInput,
    /// The invitation to withdraw.
    RevokeInvitationInput,
    /// The invitation to decline.
    DeclineInvitationInput,
}

per_mutation! {
    SimpleObject,
    /// An invitation after a change of status.
    InvitationPayload {
        /// The invitation, with its new status.
        invitation: Invitation,
    }
    /// The result of `revokeInvitation`.
    RevokeInvitationPayload,
    /// The result of `declineInvitation`.
    DeclineInvitationPayload,
}

/// The invitation to accept, named by its token.
#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The token from the invitation's link (`token=` in `acceptUrl`).
    pub token: String,
}

/// The membership an accepted invitation leads to.
#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    /// The viewer's membership of the organization, with the offered roles.
    pub membership: Membership,
}

/// The invitation to accept, and the new account's name and password.
#[derive(InputObject)]
pub struct AcceptInvitationWithSignUpInput {
    /// The token from the invitation's link (`token=` in `acceptUrl`).
    pub token: String,
    /// The new account's display name, 1 to 100 characters.
    pub name: String,
    /// At least 10 characters.
    pub password: String,
}

/// The new account's session and membership.
#[derive(SimpleObject)]
pub struct AcceptInvitationWithSignUpPayload {
    /// The credentials of the new account's session.
    pub auth: AuthPayload,
    /// The new account's membership of the organization, with the offered roles.
    pub membership: Membership,
}

/// The member to remove.
#[derive(InputObject)]
pub struct RemoveMemberInput {
    /// The membership to end.
    pub membership_id: ID,
}

/// The result of `removeMember`.
#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    /// The global ID the removed membership had.
    pub removed_membership_id: ID,
}

/// The organization to leave.
#[derive(InputObject)]
pub struct LeaveOrganizationInput {
    /// The organization to leave.
    pub organization_id: ID,
}

/// The result of `leaveOrganization`.
#[derive(SimpleObject)]
pub struct LeaveOrganizationPayload {
    /// The organization the viewer left.
    pub left_organization_id: ID,
}

/// Whom to make an owner of which organization.
#[derive(InputObject)]
pub struct TransferOwnershipInput {
    /// The organization whose ownership is transferred.
    pub organization_id: ID,
    /// The membership of the member who becomes an owner.
    pub to_membership_id: ID,
    /// Also give up the caller's own owner role.
    #[graphql(default)]
    pub step_down: bool,
}

/// The result of `transferOwnership`.
#[derive(SimpleObject)]
pub struct TransferOwnershipPayload {
    /// The new owner's membership.
    pub membership: Membership,
}

fn issued(issued: Issued) -> IssuedInvitation {
    IssuedInvitation {
        invitation: Invitation(issued.invitation),
        accept_url: issued.accept_url,
    }
}

#[Object]
impl MemberMutations {
    /// Invites an email address with the role bindings it will receive (`members.invite`, and
    /// the right to grant each of them).
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, email and offered roles.")] input: InviteMemberInput,
    ) -> ApiResult<InviteMemberPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let mut offers = Vec::with_capacity(input.role_bindings.len());
        for binding in &input.role_bindings {
            offers.push(Offer {
                role_id: ids::decode("roleBindings.roleId", NodeKind::Role, &binding.role_id)?,
                workspace_id: binding
                    .workspace_id
                    .as_ref()
                    .map(|w| ids::decode("roleBindings.workspaceId", NodeKind::Workspace, w))
                    .transpose()?,
                expires_at: binding.expires_at,
            });
        }
        let result = invitation_service::invite(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &input.email,
            offers,
        )
        .await?;
        Ok(issued(result).into())
    }

    /// Sends a new link with a new expiry; the previous link stops working (`members.invite`).
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation to resend, PENDING or EXPIRED.")] input: ResendInvitationInput,
    ) -> ApiResult<ResendInvitationPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        Ok(issued(invitation_service::resend(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?).into())
    }

    /// Withdraws a pending invitation (`members.invite`).
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The pending invitation to withdraw.")] input: RevokeInvitationInput,
    ) -> ApiResult<RevokeInvitationPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        let invitation = invitation_service::revoke(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(invitation),
        }
        .into())
    }

    /// Declines an invitation addressed to the viewer.
    async fn decline_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The pending invitation to decline.")] input: DeclineInvitationInput,
    ) -> ApiResult<DeclineInvitationPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        let invitation = invitation_service::decline(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(invitation),
        }
        .into())
    }

    /// Accepts an invitation addressed to the viewer's email.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's token.")] input: AcceptInvitationInput,
    ) -> ApiResult<AcceptInvitationPayload> {
        let membership = invitation_service::accept(app(ctx), &state(ctx).meta, principal(ctx)?, &input.token).await?;
        Ok(AcceptInvitationPayload {
            membership: Membership(membership),
        })
    }

    /// Creates an account with the invited email, signs it in and accepts.
    async fn accept_invitation_with_sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's token and the new account's name and password.")]
        input: AcceptInvitationWithSignUpInput,
    ) -> ApiResult<AcceptInvitationWithSignUpPayload> {
        let (credentials, membership) = invitation_service::accept_with_sign_up(
            app(ctx),
            &state(ctx).meta,
            &input.token,
            &input.name,
            &input.password,
        )
        .await?;
        Ok(AcceptInvitationWithSignUpPayload {
            auth: credentials.into(),
            membership: Membership(membership),
        })
    }

    /// Removes a member (`members.remove`, holding every key they hold; owners only by owners).
    pub(crate) async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member to remove.")] input: RemoveMemberInput,
    ) -> ApiResult<RemoveMemberPayload> {
        let id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
        members::remove(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(RemoveMemberPayload {
            removed_membership_id: input.membership_id,
        })
    }

    /// Leaves an organization; the last owner must transfer ownership first.
    async fn leave_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization to leave.")] input: LeaveOrganizationInput,
    ) -> ApiResult<LeaveOrganizationPayload> {
        let id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        members::leave(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(LeaveOrganizationPayload {
            left_organization_id: input.organization_id,
        })
    }

    /// Makes another member an owner; with `stepDown` the caller stops being one, atomically.
    async fn transfer_ownership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, the new owner and whether the caller steps down.")]
        input: TransferOwnershipInput,
    ) -> ApiResult<TransferOwnershipPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let to = ids::decode("toMembershipId", NodeKind::Membership, &input.to_membership_id)?;
        let membership = members::transfer_ownership(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            to,
            input.step_down,
        )
        .await?;
        Ok(TransferOwnershipPayload {
            membership: Membership(membership),
        })
    }
}
