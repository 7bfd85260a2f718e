//! Root mutation fields: parse input, call a service, map the result. Nothing else.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::accounts::{self, Credentials, SignUp};
use crate::domain::organizations::{self as org_service, CreateOrganization, UpdateOrganization};

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::{Membership, Organization, Plan, User};

/// Sign-up, sessions and organizations.
#[derive(Default)]
pub struct AccountMutations;

/// A new account's email, password and name.
#[derive(InputObject)]
pub struct SignUpInput {
    /// The account's email; no other account may have it, ignoring case and surrounding spaces.
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// The display name, 1 to 100 characters.
    pub name: String,
}

/// The answer of `signUp`: the same for every address.
#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// What to do next.
    pub message: String,
    /// The address the link was sent to, as given.
    pub email: String,
}

/// The link that proves an account's address.
#[derive(InputObject)]
pub struct VerifyEmailInput {
    /// The token of the link (`token=` in its address).
    pub token: String,
}

/// The result of `verifyEmail`.
#[derive(SimpleObject)]
pub struct VerifyEmailPayload {
    /// The account, its address now verified.
    pub user: User,
}

/// A new verification link to mail.
#[derive(InputObject)]
pub struct SendVerificationEmailInput {
    /// A path of the app to continue at once verified, e.g. `/invitations` (letters, digits and
    /// `/_-.` only, at most 200 characters); the link carries it as `next=`.
    pub next: Option<String>,
}

/// The result of `sendVerificationEmail`.
#[derive(SimpleObject)]
pub struct SendVerificationEmailPayload {
    /// What to expect next.
    pub message: String,
}

/// Credentials to sign in with.
#[derive(InputObject)]
pub struct LogInInput {
    /// The account's email; case does not matter.
    pub email: String,
    /// The account's password.
    pub password: String,
}

/// The refresh token to exchange.
#[derive(InputObject)]
pub struct RefreshSessionInput {
    /// The session's latest refresh token; presenting one already used, after a few seconds' grace,
    /// ends the session.
    pub refresh_token: String,
}

/// What to sign out of.
#[derive(InputObject)]
pub struct LogOutInput {
    /// End every session of the viewer and invalidate all their access tokens.
    #[graphql(default = false)]
    pub everywhere: bool,
}

/// A session's credentials. The refresh token is shown once.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A short-lived JWT to send as `Authorization: Bearer <accessToken>`; valid until `expiresAt`.
    pub access_token: String,
    /// Exchanges once for new credentials through `refreshSession`.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: User,
}

impl From<Credentials> for AuthPayload {
    fn from(c: Credentials) -> Self {
        AuthPayload {
            access_token: c.access_token,
            refresh_token: c.refresh_token,
            expires_at: c.expires_at,
            user: User(std::sync::Arc::new(c.user)),
        }
    }
}

/// The result of `logOut`.
#[derive(SimpleObject)]
pub struct LogOutPayload {
    /// How many sessions were ended.
    pub ended_sessions: i32,
}

/// A new organization's name and slug.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// The display name, 1 to 100 characters.
    pub name: String,
    /// `[a-z0-9-]{3,40}`, unique.
    pub slug: String,
}

/// The new organization and its creator's membership.
#[derive(SimpleObject)]
pub struct CreateOrganizationPayload {
    /// The new organization, on the FREE plan.
    pub organization: Organization,
    /// The creator's membership, bound to `owner`.
    pub membership: Membership,
}

/// Changes to an organization; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// The organization to change.
    pub organization_id: ID,
    /// A new display name, 1 to 100 characters; needs `organization.update`.
    pub name: Option<String>,
    /// A new slug, `[a-z0-9-]{3,40}` and unique; needs `organization.update`.
    pub slug: Option<String>,
    /// Needs `billing.manage`.
    pub plan: Option<Plan>,
    /// Whether members must have two-factor sign-in on to use anything guarded here; owners
    /// only, and turning it on needs the caller's own account to have it.
    pub require_two_factor: Option<bool>,
}

/// The changed organization.
#[derive(SimpleObject)]
pub struct UpdateOrganizationPayload {
    /// The organization after the change.
    pub organization: Organization,
}

/// The organization to delete, confirmed by its slug.
#[derive(InputObject)]
pub struct DeleteOrganizationInput {
    /// The organization to delete.
    pub organization_id: ID,
    /// Must equal the organization's slug.
    pub confirm_slug: String,
}

/// The result of `deleteOrganization`.
#[derive(SimpleObject)]
pub struct DeleteOrganizationPayload {
    /// The global ID the deleted organization had.
    pub deleted_organization_id: ID,
}

#[Object]
impl AccountMutations {
    /// Creates an account and mails its address a verification link. Answers the same whether
    /// or not the address is taken (an existing account's owner is told someone tried), so it
    /// reveals nothing about who has an account; sign in with `logIn` afterwards. Until the
    /// address is verified (`verifyEmail`) the account can sign in but not create organizations
    /// or accept invitations (`EMAIL_NOT_VERIFIED`); one never verified is removed after
    /// `--unverified-account-days`. Limited per client address and to 5 an hour per address.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new account.")] input: SignUpInput,
    ) -> ApiResult<SignUpPayload> {
        let email = input.email.trim().to_owned();
        accounts::sign_up(
            app(ctx),
            &state(ctx).meta,
            SignUp {
                email: input.email,
                password: input.password,
                name: input.name,
            },
        )
        .await?;
        Ok(SignUpPayload {
            message: "Check your mail: a link to confirm the address is on its way. Then sign in.".to_owned(),
            email,
        })
    }

    /// Verifies the account's address through the link mailed to it, opened while signed in to
    /// that account (the link proves the mailbox, the session the password; single-use, valid
    /// 24 hours). BAD_USER_INPUT (field `token`) for a link that is unknown, used, expired or
    /// another account's.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token.")] input: VerifyEmailInput,
    ) -> ApiResult<VerifyEmailPayload> {
        let user = crate::domain::self_service::verify_email(app(ctx), &state(ctx).meta, principal(ctx)?, &input.token)
            .await?;
        Ok(VerifyEmailPayload {
            user: User(std::sync::Arc::new(user)),
        })
    }

    /// Mails the viewer a new verification link (the previous one stops working); at most 5 an
    /// hour. CONFLICT when the address is verified already.
    async fn send_verification_email(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Where the link should lead once the address is verified.")] input: SendVerificationEmailInput,
    ) -> ApiResult<SendVerificationEmailPayload> {
        crate::domain::self_service::send_verification_email(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            input.next.as_deref(),
        )
        .await?;
        Ok(SendVerificationEmailPayload {
            message: "A new link is on its way.".to_owned(),
        })
    }

    /// Signs in with email and password. For an account with two-factor sign-in, a right password
    /// answers `TWO_FACTOR_REQUIRED` with `extensions.challenge` instead of credentials: finish
    /// with `completeLogIn`.
    async fn log_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The email and password.")] input: LogInInput,
    ) -> ApiResult<AuthPayload> {
        Ok(
            accounts::log_in(app(ctx), &state(ctx).meta, &input.email, input.password)
                .await?
                .into(),
        )
    }

    /// Exchanges a refresh token for new credentials; each refresh token works once.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token to exchange.")] input: RefreshSessionInput,
    ) -> ApiResult<AuthPayload> {
        Ok(
            accounts::refresh_session(app(ctx), &state(ctx).meta, &input.refresh_token)
                .await?
                .into(),
        )
    }

    /// Ends this session, or every session of the viewer.
    async fn log_out(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whether to end every session.")] input: LogOutInput,
    ) -> ApiResult<LogOutPayload> {
        let ended = accounts::log_out(app(ctx), &state(ctx).meta, principal(ctx)?, input.everywhere).await?;
        Ok(LogOutPayload {
            ended_sessions: ended as i32,
        })
    }

    /// Creates an organization; the viewer becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new organization's name and slug.")] input: CreateOrganizationInput,
    ) -> ApiResult<CreateOrganizationPayload> {
        let (organization, membership) = org_service::create(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            CreateOrganization {
                name: input.name,
                slug: input.slug,
            },
        )
        .await?;
        Ok(CreateOrganizationPayload {
            organization: Organization(organization),
            membership: Membership(membership),
        })
    }

    /// Renames an organization or changes its slug (`organization.update`) or plan (`billing.manage`).
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and what to change.")] input: UpdateOrganizationInput,
    ) -> ApiResult<UpdateOrganizationPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let organization = org_service::update(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            UpdateOrganization {
                organization_id,
                name: input.name,
                slug: input.slug,
                plan: input.plan.map(|p| p.as_str().to_owned()),
                require_two_factor: input.require_two_factor,
            },
        )
        .await?;
        Ok(UpdateOrganizationPayload {
            organization: Organization(organization),
        })
    }

    /// Deletes an organization and everything in it (owner only).
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and its slug, as confirmation.")] input: DeleteOrganizationInput,
    ) -> ApiResult<DeleteOrganizationPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        org_service::delete(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &input.confirm_slug,
        )
        .await?;
        Ok(DeleteOrganizationPayload {
            deleted_organization_id: input.organization_id,
        })
    }
}
