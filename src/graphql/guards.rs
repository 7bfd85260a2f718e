//! Field guards: a field of an organization is readable with one key there. The caller's keys
//! come from the per-request access cache, so many guarded fields cost one load.
use async_graphql::{Context, Guard};
use uuid::Uuid;

use super::context::require_key;

/// Requires `key` at the organization (never FORBIDDEN to non-members: they get NOT_FOUND).
pub struct KeyGuard {
    organization_id: Uuid,
    key: &'static str,
}

impl KeyGuard {
    pub fn new(organization_id: Uuid, key: &'static str) -> KeyGuard {
        KeyGuard { organization_id, key }
    }
}

impl Guard for KeyGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        require_key(ctx, self.organization_id, self.key, None).await?;
        Ok(())
    }
}
