//! Mutations for integrations: personal API tokens, service accounts and their tokens.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::api_tokens::{self as token_service, TokenSpec};
use crate::domain::invitations::Offer;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::mutation_members::RoleBindingInput;
use super::types::{ApiToken, Membership};

/// API tokens and service accounts.
#[derive(Default)]
pub struct TokenMutations;

/// A new personal API token of the viewer.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// A label to recognise the token by, 1 to 100 characters.
    pub name: String,
    /// Restrict the token to one organization.
    pub organization_id: Option<ID>,
    /// Restrict the token's keys to one keychain reachable through the caller's roles there.
    pub keychain_id: Option<ID>,
    /// When the token stops working, in the future; `null` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

per_mutation! {
    SimpleObject,
    /// A new API token and its secret.
    NewApiToken {
        /// The new token.
        api_token: ApiToken,
        /// The secret, shown this once.
        token: String,
    }
    /// The result of `createApiToken`: the new personal token and its secret.
    CreateApiTokenPayload,
    /// The result of `createServiceAccountToken`: the service account's new token and its secret.
    CreateServiceAccountTokenPayload,
}

/// The API token to revoke.
#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    /// The token to revoke.
    pub api_token_id: ID,
}

/// The revoked API token.
#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The token, with `revokedAt` set; it no longer works.
    pub api_token: ApiToken,
}

/// A new service account of an organization.
#[derive(InputObject)]
pub struct CreateServiceAccountInput {
    /// The organization the service account belongs to; a service account acts in no other.
    pub organization_id: ID,
    /// The service account's display name, 1 to 100 characters.
    pub name: String,
    /// Roles to grant it, at most 20 (none by default); the caller must be allowed to grant each.
    #[graphql(default)]
    pub role_bindings: Vec<RoleBindingInput>,
}

/// The new service account.
#[derive(SimpleObject)]
pub struct CreateServiceAccountPayload {
    /// The service account's membership; its `user` is the account.
    pub membership: Membership,
}

/// A new API token for a service account.
#[derive(InputObject)]
pub struct CreateServiceAccountTokenInput {
    /// The service account's membership.
    pub membership_id: ID,
    /// A label to recognise the token by, 1 to 100 characters.
    pub name: String,
    /// Restrict the token's keys to one keychain reachable through the service account's roles.
    pub keychain_id: Option<ID>,
    /// When the token stops working, in the future; `null` for never. Minted through an API
    /// token, it cannot outlive that token and defaults to its expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

fn keychain(id: &Option<ID>) -> ApiResult<Option<uuid::Uuid>> {
    Ok(id
        .as_ref()
        .map(|k| ids::decode("keychainId", NodeKind::Keychain, k))
        .transpose()?)
}

#[Object]
impl TokenMutations {
    /// Creates a personal API token of the viewer (signed in, not through another token).
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token's name, and what restricts it.")] input: CreateApiTokenInput,
    ) -> ApiResult<CreateApiTokenPayload> {
        let spec = TokenSpec {
            name: input.name,
            organization_id: input
                .organization_id
                .as_ref()
                .map(|o| ids::decode("organizationId", NodeKind::Organization, o))
                .transpose()?,
            keychain_id: keychain(&input.keychain_id)?,
            expires_at: input.expires_at,
        };
        let (token, secret) = token_service::create(app(ctx), &state(ctx).meta, principal(ctx)?, spec).await?;
        Ok(NewApiToken {
            api_token: ApiToken(token),
            token: secret,
        }
        .into())
    }

    /// Revokes a token: one's own, or one of an organization where the viewer holds `tokens.manage`.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token to revoke.")] input: RevokeApiTokenInput,
    ) -> ApiResult<RevokeApiTokenPayload> {
        let id = ids::decode("apiTokenId", NodeKind::ApiToken, &input.api_token_id)?;
        let token = token_service::revoke(app(ctx), &state(ctx).meta, principal(ctx)?, id).await?;
        Ok(RevokeApiTokenPayload {
            api_token: ApiToken(token),
        })
    }

    /// Creates a service account in an organization (`service_accounts.manage`).
    async fn create_service_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, name and roles of the service account.")] input: CreateServiceAccountInput,
    ) -> ApiResult<CreateServiceAccountPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let mut offers = Vec::new();
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
        let membership = token_service::create_service_account(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &input.name,
            offers,
        )
        .await?;
        Ok(CreateServiceAccountPayload {
            membership: Membership(membership),
        })
    }

    /// Mints a token for a service account, restricted to its organization (`service_accounts.manage`).
    async fn create_service_account_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service account and the token's name and restrictions.")]
        input: CreateServiceAccountTokenInput,
    ) -> ApiResult<CreateServiceAccountTokenPayload> {
        let membership_id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
        let spec = TokenSpec {
            name: input.name,
            organization_id: None,
            keychain_id: keychain(&input.keychain_id)?,
            expires_at: input.expires_at,
        };
        let (token, secret) = token_service::create_service_account_token(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            membership_id,
            spec,
        )
        .await?;
        Ok(NewApiToken {
            api_token: ApiToken(token),
            token: secret,
        }
        .into())
    }
}
