//! Per-request state: who is calling, request facts and the object budget; and the caller's
//! access per organization, from `domain::standing` (kept across requests while the database is
//! unchanged) or else the request's access loader (which remembers it for the rest of the
//! request while the write clock has not moved). Both follow the write clock, so a mutation
//! needs to forget nothing by hand: its commit moves the clock.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::Context;
use uuid::Uuid;

use crate::domain::access::MemberAccess;
use crate::domain::{App, DomainError, Principal, RequestMeta};

use super::error::{ApiError, ApiResult};

/// Built by the HTTP layer for each request.
pub struct RequestState {
    pub principal: Option<Principal>,
    pub meta: RequestMeta,
    /// Objects unpaged lists may still hand out in this request (see [`charge`]).
    objects_left: AtomicUsize,
    /// Previews of one request run one at a time: each holds a write transaction, and query
    /// fields otherwise run together, each taking a connection of the pool.
    pub previews: tokio::sync::Mutex<()>,
}

impl RequestState {
    pub fn new(principal: Option<Principal>, meta: RequestMeta) -> RequestState {
        RequestState::with_object_budget(principal, meta, usize::MAX)
    }

    /// A request whose unpaged lists may hand out at most `objects` objects in all.
    pub fn with_object_budget(principal: Option<Principal>, meta: RequestMeta, objects: usize) -> RequestState {
        RequestState {
            principal,
            meta,
            objects_left: AtomicUsize::new(objects),
            previews: tokio::sync::Mutex::new(()),
        }
    }
}

/// Takes `objects` from the request's object budget, or refuses the field. Lists that are not
/// paged (an organization's roles, a role's keychains, a member's bindings) are priced at typical
/// sizes before the request runs; this makes their real sizes count while it runs, so a request
/// over organizations holding hundreds of definitions stops at the budget instead of building
/// millions of objects (GitHub's node limit, enforced as the lists come in).
pub fn charge(ctx: &Context<'_>, objects: usize) -> ApiResult<()> {
    let left = &state(ctx).objects_left;
    match left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(objects)) {
        Ok(_) => Ok(()),
        Err(_) => {
            left.store(0, Ordering::Release);
            Err(ApiError(DomainError::bad_input(
                "query",
                "this request lists more objects than one request may; ask for fewer fields or smaller pages",
            )))
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

/// The caller's access to an organization (`None` when not a member).
pub async fn access(ctx: &Context<'_>, organization_id: Uuid) -> ApiResult<Option<Arc<MemberAccess>>> {
    let Some(principal) = &state(ctx).principal else {
        return Ok(None);
    };
    match crate::domain::access::cached(app(ctx), principal, organization_id) {
        // Current in the shared cache: no statement, and no wait for a loader batch.
        Some(hit) => Ok(hit),
        // Batched: guards of many organizations in one response share a few statements.
        None => super::loaders::loaders(ctx)
            .access
            .load_one(organization_id)
            .await
            .map_err(super::loaders::domain_loader_error),
    }
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
