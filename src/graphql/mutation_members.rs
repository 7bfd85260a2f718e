//! Mutations of the membership lifecycle: invitations, removal, leaving, ownership transfer.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::invitations::{self as invitation_service, Issued, Offer};
use crate::domain::members;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::mutation::AuthPayload;
use super::objects::{Invitation, Membership};

/// Invitations and membership changes.
#[derive(Default)]
pub struct MemberMutations;

/// A role binding to offer or grant: organization-wide when `workspaceId` is null.
#[derive(InputObject)]
pub struct RoleBindingInput {
    pub role_id: ID,
    pub workspace_id: Option<ID>,
}

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub organization_id: ID,
    pub email: String,
    /// What accepting grants; `member` when empty.
    #[graphql(default)]
    pub role_bindings: Vec<RoleBindingInput>,
}

#[derive(SimpleObject)]
pub struct InviteMemberPayload {
    pub invitation: Invitation,
    /// The link to send; it holds the invitation's one-time token.
    pub accept_url: String,
}

#[derive(InputObject)]
pub struct InvitationIdInput {
    pub invitation_id: ID,
}

#[derive(SimpleObject)]
pub struct InvitationPayload {
    pub invitation: Invitation,
}

#[derive(InputObject)]
pub struct AcceptInvitationInput {
    pub token: String,
}

#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    pub membership: Membership,
}

#[derive(InputObject)]
pub struct AcceptInvitationWithSignUpInput {
    pub token: String,
    pub name: String,
    /// At least 10 characters.
    pub password: String,
}

#[derive(SimpleObject)]
pub struct AcceptInvitationWithSignUpPayload {
    pub auth: AuthPayload,
    pub membership: Membership,
}

#[derive(InputObject)]
pub struct RemoveMemberInput {
    pub membership_id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    pub removed_membership_id: ID,
}

#[derive(InputObject)]
pub struct LeaveOrganizationInput {
    pub organization_id: ID,
}

#[derive(SimpleObject)]
pub struct LeaveOrganizationPayload {
    pub left_organization_id: ID,
}

#[derive(InputObject)]
pub struct TransferOwnershipInput {
    pub organization_id: ID,
    pub to_membership_id: ID,
    /// Also give up the caller's own owner role.
    #[graphql(default)]
    pub step_down: bool,
}

#[derive(SimpleObject)]
pub struct TransferOwnershipPayload {
    /// The new owner's membership.
    pub membership: Membership,
}

fn issued(issued: Issued) -> InviteMemberPayload {
    InviteMemberPayload {
        invitation: Invitation(issued.invitation),
        accept_url: issued.accept_url,
    }
}

#[Object]
impl MemberMutations {
    /// Invites an email address with the role bindings it will receive (`members.invite`, and
    /// the right to grant each of them).
    async fn invite_member(&self, ctx: &Context<'_>, input: InviteMemberInput) -> ApiResult<InviteMemberPayload> {
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
        Ok(issued(result))
    }

    /// Sends a new link with a new expiry; the previous link stops working (`members.invite`).
    async fn resend_invitation(&self, ctx: &Context<'_>, input: InvitationIdInput) -> ApiResult<InviteMemberPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        Ok(issued(
            invitation_service::resend(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?,
        ))
    }

    /// Withdraws a pending invitation (`members.invite`).
    async fn revoke_invitation(&self, ctx: &Context<'_>, input: InvitationIdInput) -> ApiResult<InvitationPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        let invitation = invitation_service::revoke(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(invitation),
        })
    }

    /// Declines an invitation addressed to the viewer.
    async fn decline_invitation(&self, ctx: &Context<'_>, input: InvitationIdInput) -> ApiResult<InvitationPayload> {
        let id = ids::decode("invitationId", NodeKind::Invitation, &input.invitation_id)?;
        let invitation = invitation_service::decline(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(InvitationPayload {
            invitation: Invitation(invitation),
        })
    }

    /// Accepts an invitation addressed to the viewer's email.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> ApiResult<AcceptInvitationPayload> {
        let membership = invitation_service::accept(app(ctx), &state(ctx).meta, principal(ctx)?, &input.token).await?;
        state(ctx).invalidate_access();
        Ok(AcceptInvitationPayload {
            membership: Membership(membership),
        })
    }

    /// Creates an account with the invited email, signs it in and accepts.
    async fn accept_invitation_with_sign_up(
        &self,
        ctx: &Context<'_>,
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
    async fn remove_member(&self, ctx: &Context<'_>, input: RemoveMemberInput) -> ApiResult<RemoveMemberPayload> {
        let id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
        members::remove(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        state(ctx).invalidate_access();
        Ok(RemoveMemberPayload {
            removed_membership_id: input.membership_id,
        })
    }

    /// Leaves an organization; the last owner must transfer ownership first.
    async fn leave_organization(
        &self,
        ctx: &Context<'_>,
        input: LeaveOrganizationInput,
    ) -> ApiResult<LeaveOrganizationPayload> {
        let id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        members::leave(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        state(ctx).invalidate_access();
        Ok(LeaveOrganizationPayload {
            left_organization_id: input.organization_id,
        })
    }

    /// Makes another member an owner; with `stepDown` the caller stops being one, atomically.
    async fn transfer_ownership(
        &self,
        ctx: &Context<'_>,
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
        state(ctx).invalidate_access();
        Ok(TransferOwnershipPayload {
            membership: Membership(membership),
        })
    }
}
