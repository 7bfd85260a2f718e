//! Mutations on the viewer's own account: profile, password, address, devices, deletion, and
//! the password reset that works without signing in.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::self_service;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::mutation::AuthPayload;
use super::types::User;

/// A change of the viewer's profile.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// The name to show, 1 to 100 characters.
    pub name: String,
}

/// The result of `updateProfile`.
#[derive(SimpleObject)]
pub struct UpdateProfilePayload {
    /// The viewer after the change.
    pub user: User,
}

/// A new password, proved by the current one.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    pub current_password: String,
    /// At least 10 characters.
    pub new_password: String,
}

/// An address to send a password-reset link to.
#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    /// The account's address; the answer is the same whether or not an account has it.
    pub email: String,
}

/// The result of `requestPasswordReset`.
#[derive(SimpleObject)]
pub struct RequestPasswordResetPayload {
    /// The same for every address: what to expect next.
    pub message: String,
}

/// A new password set through a reset link.
#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token of the link (`token=` in its address).
    pub token: String,
    /// At least 10 characters.
    pub new_password: String,
}

/// The result of `resetPassword`.
#[derive(SimpleObject)]
pub struct ResetPasswordPayload {
    /// Always true: every session of the account has ended; sign in with the new password.
    pub signed_out_everywhere: bool,
}

/// A new address for the viewer's account, proved by the password.
#[derive(InputObject)]
pub struct ChangeEmailInput {
    /// The address to move to; it receives a link that makes the change.
    pub new_email: String,
    /// The account's password.
    pub password: String,
}

/// The result of `changeEmail`.
#[derive(SimpleObject)]
pub struct ChangeEmailPayload {
    /// The same whether or not the address is free: what to expect next.
    pub message: String,
}

/// The link that proves a new address.
#[derive(InputObject)]
pub struct ConfirmEmailChangeInput {
    /// The token of the link (`token=` in its address).
    pub token: String,
}

/// The result of `confirmEmailChange`.
#[derive(SimpleObject)]
pub struct ConfirmEmailChangePayload {
    /// The account with its new address.
    pub user: User,
}

/// A session of the viewer's to end.
#[derive(InputObject)]
pub struct EndSessionInput {
    /// A session of `viewer.sessions`.
    pub session_id: ID,
}

/// The result of `endSession`.
#[derive(SimpleObject)]
pub struct EndSessionPayload {
    /// The ended session's ID.
    pub ended_session_id: ID,
}

/// The viewer's account to delete, proved by the password.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The account's password.
    pub password: String,
}

/// The result of `deleteAccount`.
#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    /// The ID the deleted account had.
    pub deleted_user_id: ID,
}

/// Mutations on the viewer's own account.
#[derive(Default)]
pub struct SelfServiceMutations;

#[Object]
impl SelfServiceMutations {
    /// Changes the viewer's name (a signed-in session; not through API tokens).
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new name.")] input: UpdateProfileInput,
    ) -> ApiResult<UpdateProfilePayload> {
        let user = self_service::update_profile(app(ctx), &state(ctx).meta, principal(ctx)?, &input.name).await?;
        Ok(UpdateProfilePayload {
            user: User(std::sync::Arc::new(user)),
        })
    }

    /// Changes the viewer's password: the current one is checked (10 wrong ones an hour at
    /// most), every other session ends, and this one continues with the new credentials
    /// returned. A notice goes to the account's address.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The current and the new password.")] input: ChangePasswordInput,
    ) -> ApiResult<AuthPayload> {
        let credentials = self_service::change_password(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            input.current_password,
            input.new_password,
        )
        .await?;
        Ok(credentials.into())
    }

    /// Mails a single-use link (valid one hour) to reset the password of the account with this
    /// address. Needs no sign-in and answers the same for every address; limited to 5 requests
    /// an hour per address and 20 per client address (RATE_LIMITED past them).
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's address.")] input: RequestPasswordResetInput,
    ) -> ApiResult<RequestPasswordResetPayload> {
        self_service::request_password_reset(app(ctx), &state(ctx).meta, &input.email).await?;
        Ok(RequestPasswordResetPayload {
            message: "If an account has this address, a link to reset its password is on its way.".to_owned(),
        })
    }

    /// Sets a new password through a reset link: the link is used up, every session of the
    /// account ends and every access token stops working. BAD_USER_INPUT (field `token`) for a
    /// link that is unknown, used or expired.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token and the new password.")] input: ResetPasswordInput,
    ) -> ApiResult<ResetPasswordPayload> {
        self_service::reset_password(app(ctx), &state(ctx).meta, &input.token, input.new_password).await?;
        Ok(ResetPasswordPayload {
            signed_out_everywhere: true,
        })
    }

    /// Asks to move the viewer's account to a new address: the password is checked, the new
    /// address receives a link (valid 24 hours) that makes the change, the current one a notice.
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new address and the password.")] input: ChangeEmailInput,
    ) -> ApiResult<ChangeEmailPayload> {
        self_service::change_email(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            &input.new_email,
            input.password,
        )
        .await?;
        Ok(ChangeEmailPayload {
            message: "A link to confirm the change is on its way to the new address.".to_owned(),
        })
    }

    /// Makes an address change the link proves (needs no sign-in: the link is the proof);
    /// CONFLICT when another account took the address meanwhile.
    async fn confirm_email_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token.")] input: ConfirmEmailChangeInput,
    ) -> ApiResult<ConfirmEmailChangePayload> {
        let user = self_service::confirm_email_change(app(ctx), &state(ctx).meta, &input.token).await?;
        Ok(ConfirmEmailChangePayload {
            user: User(std::sync::Arc::new(user)),
        })
    }

    /// Ends one of the viewer's sessions (signs that device out at once); NOT_FOUND for a
    /// session that is not the viewer's or already ended.
    async fn end_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session to end.")] input: EndSessionInput,
    ) -> ApiResult<EndSessionPayload> {
        let session_id = ids::decode("sessionId", NodeKind::Session, &input.session_id)?;
        let ended = self_service::end_session(app(ctx), &state(ctx).meta, principal(ctx)?, session_id).await?;
        Ok(EndSessionPayload {
            ended_session_id: ids::encode(NodeKind::Session, ended),
        })
    }

    /// Deletes the viewer's account after checking the password: LAST_OWNER naming every
    /// organization it is the last owner of. Its memberships, sessions and personal tokens go
    /// with it; audit events stay, their `actor` then `null` beside the kept `actorId`.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password.")] input: DeleteAccountInput,
    ) -> ApiResult<DeleteAccountPayload> {
        let viewer = principal(ctx)?;
        self_service::delete_account(app(ctx), &state(ctx).meta, viewer, input.password).await?;
        Ok(DeleteAccountPayload {
            deleted_user_id: ids::encode(NodeKind::User, viewer.user.id),
        })
    }
}
