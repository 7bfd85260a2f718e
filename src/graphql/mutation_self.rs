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

/// The password, to start setting up two-factor sign-in.
#[derive(InputObject)]
pub struct StartTwoFactorEnrollmentInput {
    /// The account's password.
    pub password: String,
}

/// A new authenticator secret, shown once.
#[derive(SimpleObject)]
pub struct StartTwoFactorEnrollmentPayload {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…` (SHA1, 6 digits, 30 s), for a QR code.
    pub otpauth_uri: String,
}

/// A first code from the authenticator app.
#[derive(InputObject)]
pub struct ConfirmTwoFactorEnrollmentInput {
    /// The app's current six-digit code.
    pub code: String,
}

/// Two-factor sign-in is on.
#[derive(SimpleObject)]
pub struct ConfirmTwoFactorEnrollmentPayload {
    /// Ten single-use codes for signing in without the app, shown once.
    pub recovery_codes: Vec<String>,
}

/// The password and the second factor, to turn two-factor sign-in off.
#[derive(InputObject)]
pub struct DisableTwoFactorInput {
    /// The account's password.
    pub password: String,
    /// The authenticator app's current code, or an unused recovery code.
    pub code: String,
}

/// The result of `disableTwoFactor`.
#[derive(SimpleObject)]
pub struct DisableTwoFactorPayload {
    /// The account, two-factor sign-in off.
    pub user: User,
}

/// The second step of a sign-in.
#[derive(InputObject)]
pub struct CompleteLogInInput {
    /// `extensions.challenge` of `logIn`'s `TWO_FACTOR_REQUIRED` answer (valid 5 minutes).
    pub challenge: String,
    /// The authenticator app's current code, or an unused recovery code.
    pub code: String,
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

    /// Starts setting up two-factor sign-in (the password is checked): a new secret, in force
    /// once `confirmTwoFactorEnrollment` gets a first code. CONFLICT while it is on.
    async fn start_two_factor_enrollment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password.")] input: StartTwoFactorEnrollmentInput,
    ) -> ApiResult<StartTwoFactorEnrollmentPayload> {
        let enrolment =
            crate::domain::two_factor::start_enrolment(app(ctx), &state(ctx).meta, principal(ctx)?, input.password)
                .await?;
        Ok(StartTwoFactorEnrollmentPayload {
            secret: enrolment.secret,
            otpauth_uri: enrolment.uri,
        })
    }

    /// Turns two-factor sign-in on with a first code from the app, signs every other device out,
    /// and hands out ten recovery codes once. From then on `logIn` answers `TWO_FACTOR_REQUIRED` with a challenge for
    /// `completeLogIn`.
    async fn confirm_two_factor_enrollment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The app's code.")] input: ConfirmTwoFactorEnrollmentInput,
    ) -> ApiResult<ConfirmTwoFactorEnrollmentPayload> {
        let codes =
            crate::domain::two_factor::confirm_enrolment(app(ctx), &state(ctx).meta, principal(ctx)?, &input.code)
                .await?;
        Ok(ConfirmTwoFactorEnrollmentPayload { recovery_codes: codes })
    }

    /// Turns two-factor sign-in off: the password and a current code (or a recovery code) are
    /// checked, a notice is mailed; its secret and recovery codes go.
    async fn disable_two_factor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password.")] input: DisableTwoFactorInput,
    ) -> ApiResult<DisableTwoFactorPayload> {
        let viewer = principal(ctx)?;
        crate::domain::two_factor::disable(app(ctx), &state(ctx).meta, viewer, input.password, &input.code).await?;
        let user = crate::domain::accounts::user_by_id(app(ctx), viewer.user.id).await?;
        Ok(DisableTwoFactorPayload {
            user: User(std::sync::Arc::new(user)),
        })
    }

    /// Finishes a sign-in that answered `TWO_FACTOR_REQUIRED`: the challenge with the app's
    /// current code (each works once) or an unused recovery code. Five wrong codes spend the
    /// challenge (sign in again).
    async fn complete_log_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The challenge and the code.")] input: CompleteLogInInput,
    ) -> ApiResult<AuthPayload> {
        let credentials =
            crate::domain::two_factor::complete_log_in(app(ctx), &state(ctx).meta, &input.challenge, &input.code)
                .await?;
        Ok(credentials.into())
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
