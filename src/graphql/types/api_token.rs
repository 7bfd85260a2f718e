//! API tokens for integrations.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::domain::definitions;
use crate::graphql::context::app;
use crate::graphql::error::ApiResult;
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{loader_error, loaders};

use super::{Keychain, Organization};

/// A bearer token for integrations; its secret is shown only when created.
pub struct ApiToken(pub crate::store::entities::api_tokens::Model);

/// A bearer token for integrations; its secret is shown only when it is created. It acts with
/// its user's current keys, narrowed to its organization and keychain when those are set.
#[Object]
impl ApiToken {
    /// The token's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::ApiToken, self.0.id)
    }

    /// The label given when it was created.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the secret, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// The only organization it may act in; `null` for all of its user's.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Option<Organization>> {
        let Some(id) = self.0.organization_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .organizations
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Organization))
    }

    /// The keychain limiting its keys; `null` for all of its user's keys.
    async fn keychain(&self, ctx: &Context<'_>) -> ApiResult<Option<Keychain>> {
        let Some(id) = self.0.keychain_id else { return Ok(None) };
        Ok(definitions::keychain_by_id(app(ctx), id).await?.map(Keychain::from))
    }

    /// When it stops working; `null` for never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// Updated at most once a minute.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was revoked; `null` while it is not.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
