//! Per-request state: who is calling, request facts, and the caller's access per organization,
//! looked up at most once per request (across requests, `domain::standing` keeps it while the
//! database is unchanged).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use uuid::Uuid;

use crate::domain::access::MemberAccess;
use crate::domain::{App, DomainError, Principal, RequestMeta};

use super::error::{ApiError, ApiResult};

/// Built by the HTTP layer for each request.
pub struct RequestState {
    pub principal: Option<Principal>,
    pub meta: RequestMeta,
    access: Mutex<HashMap<Uuid, Option<Arc<MemberAccess>>>>,
}

impl RequestState {
    pub fn new(principal: Option<Principal>, meta: RequestMeta) -> RequestState {
        RequestState {
            principal,
            meta,
            access: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets loaded access; called after each mutation, which may have changed it.
    pub fn invalidate_access(&self) {
        if let Ok(mut cache) = self.access.lock() {
            cache.clear();
        }
    }
}

pub fn app<'a>(ctx: &Context<'a>) -> &'a Arc<App> {
    ctx.data_unchecked::<Arc<App>>()
}

pub fn state<'a>(ctx: &Context<'a>) -> &'a Arc<RequestState> {
    ctx.data_unchecked::<Arc<RequestState>>()
}

/// The signed-in caller, or UNAUTHENTICATED.
pub fn principal<'a>(ctx: &Context<'a>) -> ApiResult<&'a Principal> {
    state(ctx)
        .principal
        .as_ref()
        .ok_or_else(|| ApiError(DomainError::unauthenticated()))
}

/// The caller's access to an organization (`None` when not a member), cached for the request.
pub async fn access(ctx: &Context<'_>, organization_id: Uuid) -> ApiResult<Option<Arc<MemberAccess>>> {
    let state = state(ctx);
    if let Some(hit) = state.access.lock().ok().and_then(|c| c.get(&organization_id).cloned()) {
        return Ok(hit);
    }
    let Some(principal) = &state.principal else {
        return Ok(None);
    };
    let loaded = match crate::domain::access::cached(app(ctx), principal, organization_id) {
        // Current in the shared cache: no statement, and no wait for a loader batch.
        Some(hit) => hit,
        // Batched: guards of many organizations in one response share a few statements.
        None => super::loaders::loaders(ctx)
            .access
            .load_one(organization_id)
            .await
            .map_err(super::loaders::domain_loader_error)?,
    };
    if let Ok(mut cache) = state.access.lock() {
        cache.insert(organization_id, loaded.clone());
    }
    Ok(loaded)
}

/// The caller's access, or NOT_FOUND when they are not a member (existence never leaks).
pub async fn member_access(ctx: &Context<'_>, organization_id: Uuid) -> ApiResult<Arc<MemberAccess>> {
    access(ctx, organization_id)
        .await?
        .ok_or(ApiError(DomainError::NotFound("organization")))
}

/// Requires a key at a scope of an organization the caller belongs to.
pub async fn require_key(
    ctx: &Context<'_>,
    organization_id: Uuid,
    key: &str,
    workspace: Option<Uuid>,
) -> ApiResult<Arc<MemberAccess>> {
    let access = member_access(ctx, organization_id).await?;
    access.require(app(ctx), key, workspace)?;
    Ok(access)
}
