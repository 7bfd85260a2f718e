//! Mutations of owner safety: the recovery contact and recovering ownership through it.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::owner_safety;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::{Membership, OwnerRecoveryContact, OwnershipRecovery};

/// The recovery contact to name.
#[derive(InputObject)]
pub struct SetOwnerRecoveryContactInput {
    /// The organization.
    pub organization_id: ID,
    /// The address; a link proving it is mailed there, and every owner is told.
    pub email: String,
}

/// The result of `setOwnerRecoveryContact`.
#[derive(SimpleObject)]
pub struct SetOwnerRecoveryContactPayload {
    /// The contact, unconfirmed until its link is used.
    pub recovery_contact: OwnerRecoveryContact,
}

/// The organization whose recovery contact to remove.
#[derive(InputObject)]
pub struct RemoveOwnerRecoveryContactInput {
    /// The organization.
    pub organization_id: ID,
}

/// The result of `removeOwnerRecoveryContact`.
#[derive(SimpleObject)]
pub struct RemoveOwnerRecoveryContactPayload {
    /// The organization, which has no recovery contact any more.
    pub organization_id: ID,
}

/// The link that proves the recovery contact's address.
#[derive(InputObject)]
pub struct ConfirmOwnerRecoveryContactInput {
    /// The token of the link mailed to the contact (`token=` in it).
    pub token: String,
}

/// The result of `confirmOwnerRecoveryContact`.
#[derive(SimpleObject)]
pub struct ConfirmOwnerRecoveryContactPayload {
    /// The contact, now confirmed.
    pub recovery_contact: OwnerRecoveryContact,
}

/// Asks for the link that starts a recovery.
#[derive(InputObject)]
pub struct RequestOwnershipRecoveryInput {
    /// The organization to recover.
    pub organization_id: ID,
    /// The recovery contact's address; the link goes there, and only there.
    pub email: String,
}

/// The result of `requestOwnershipRecovery`: the same whatever happened.
#[derive(SimpleObject)]
pub struct RequestOwnershipRecoveryPayload {
    /// What to expect, in words.
    pub message: String,
}

/// The link that starts a recovery.
#[derive(InputObject)]
pub struct StartOwnershipRecoveryInput {
    /// The token of the link mailed to the recovery contact (`token=` in it).
    pub token: String,
}

/// The result of `startOwnershipRecovery`.
#[derive(SimpleObject)]
pub struct StartOwnershipRecoveryPayload {
    /// The recovery, PENDING until `readyAt`.
    pub recovery: OwnershipRecovery,
}

/// The organization whose pending recovery to cancel.
#[derive(InputObject)]
pub struct CancelOwnershipRecoveryInput {
    /// The organization.
    pub organization_id: ID,
}

/// The result of `cancelOwnershipRecovery`.
#[derive(SimpleObject)]
pub struct CancelOwnershipRecoveryPayload {
    /// The recovery, CANCELLED.
    pub recovery: OwnershipRecovery,
}

/// The organization whose recovery to complete.
#[derive(InputObject)]
pub struct CompleteOwnershipRecoveryInput {
    /// The organization.
    pub organization_id: ID,
}

/// The result of `completeOwnershipRecovery`.
#[derive(SimpleObject)]
pub struct CompleteOwnershipRecoveryPayload {
    /// The caller's membership, now holding `owner`.
    pub membership: Membership,
}

/// Mutations of owner safety.
#[derive(Default)]
pub struct OwnerSafetyMutations;

#[Object]
impl OwnerSafetyMutations {
    /// Names (or replaces) the recovery contact: a link proving the address is mailed to it,
    /// and every owner is told. Owners only, signed in (not through an API token).
    async fn set_owner_recovery_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and the address.")] input: SetOwnerRecoveryContactInput,
    ) -> ApiResult<SetOwnerRecoveryContactPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let contact = owner_safety::set_contact(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &input.email,
        )
        .await?;
        Ok(SetOwnerRecoveryContactPayload {
            recovery_contact: contact.into(),
        })
    }

    /// Removes the recovery contact, cancelling any pending recovery. Owners only, signed in.
    async fn remove_owner_recovery_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization.")] input: RemoveOwnerRecoveryContactInput,
    ) -> ApiResult<RemoveOwnerRecoveryContactPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        owner_safety::remove_contact(app(ctx), &state(ctx).meta, principal(ctx)?, organization_id).await?;
        Ok(RemoveOwnerRecoveryContactPayload {
            organization_id: input.organization_id,
        })
    }

    /// Confirms the recovery contact's address by the link mailed to it; needs no sign-in. The
    /// link works once, for 72 hours.
    async fn confirm_owner_recovery_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token.")] input: ConfirmOwnerRecoveryContactInput,
    ) -> ApiResult<ConfirmOwnerRecoveryContactPayload> {
        let contact = owner_safety::confirm_contact(app(ctx), &state(ctx).meta, &input.token).await?;
        Ok(ConfirmOwnerRecoveryContactPayload {
            recovery_contact: contact.into(),
        })
    }

    /// Asks for the link that starts a recovery of ownership; it is mailed to the organization's
    /// confirmed recovery contact when `email` is that address (at most every ten minutes).
    /// Needs no sign-in, and answers the same whatever the organization, address or outcome.
    async fn request_ownership_recovery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and the recovery contact's address.")] input: RequestOwnershipRecoveryInput,
    ) -> ApiResult<RequestOwnershipRecoveryPayload> {
        // An ID that is not an organization's is answered like any other miss.
        if let Ok(organization_id) = ids::decode("organizationId", NodeKind::Organization, &input.organization_id) {
            owner_safety::request(app(ctx), &state(ctx).meta, organization_id, &input.email).await?;
        }
        Ok(RequestOwnershipRecoveryPayload {
            message:
                "if this address is the organization's confirmed recovery contact, a link to go on was mailed to it"
                    .to_owned(),
        })
    }

    /// Starts a recovery by the link mailed to the recovery contact, for the signed-in caller
    /// (not through an API token). Every owner is mailed and may cancel until `readyAt`.
    async fn start_ownership_recovery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token.")] input: StartOwnershipRecoveryInput,
    ) -> ApiResult<StartOwnershipRecoveryPayload> {
        let recovery = owner_safety::start(app(ctx), &state(ctx).meta, principal(ctx)?, &input.token).await?;
        Ok(StartOwnershipRecoveryPayload {
            recovery: OwnershipRecovery(recovery, Some(principal(ctx)?.user.clone())),
        })
    }

    /// Cancels the pending recovery (owners only); the recovery contact is told.
    async fn cancel_ownership_recovery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization.")] input: CancelOwnershipRecoveryInput,
    ) -> ApiResult<CancelOwnershipRecoveryPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let recovery = owner_safety::cancel(app(ctx), &state(ctx).meta, principal(ctx)?, organization_id).await?;
        Ok(CancelOwnershipRecoveryPayload {
            recovery: OwnershipRecovery(recovery, None),
        })
    }

    /// Completes the caller's own recovery once its waiting period is over: the caller joins if
    /// needed and holds `owner`; every owner is told. Before `readyAt` it is FORBIDDEN.
    async fn complete_ownership_recovery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization.")] input: CompleteOwnershipRecoveryInput,
    ) -> ApiResult<CompleteOwnershipRecoveryPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let membership = owner_safety::complete(app(ctx), &state(ctx).meta, principal(ctx)?, organization_id).await?;
        Ok(CompleteOwnershipRecoveryPayload {
            membership: Membership(membership),
        })
    }
}
