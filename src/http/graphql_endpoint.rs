//! `POST /graphql`: JSON only (a browser cannot send it cross-site without a preflight), at most
//! a few operations per batch, credentials checked before anything executes.
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::{BatchRequest, BatchResponse, ServerError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use tracing::Instrument;

use super::{HttpState, MAX_BATCH, RequestId};
use crate::domain::{DomainError, Principal, RequestMeta, accounts, api_tokens, audit};
use crate::graphql::batch::{self, Batcher};
use crate::graphql::context::RequestState;
use crate::graphql::error::INTERNAL_MESSAGE;
use crate::graphql::loaders::Loaders;

fn error_body(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code, "requestId": request_id } }] });
    (status, Json(body)).into_response()
}

/// Operations are never run over GET, so no link or image tag can trigger one.
pub async fn get_refused(Extension(RequestId(id)): Extension<RequestId>) -> Response {
    let mut response = error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "BAD_USER_INPUT",
        "send GraphQL operations as POST with Content-Type: application/json",
        &id,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fn client_address(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            // The entry the trusted proxy appended: the ones before it are the client's to choose.
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    {
        return first.to_owned();
    }
    peer.ip().to_string()
}

async fn authenticate(state: &HttpState, headers: &HeaderMap) -> Result<Option<Principal>, DomainError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| DomainError::unauthenticated())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DomainError::Unauthenticated("use Authorization: Bearer <token>".to_owned()))?;
    if api_tokens::is_api_token(token) {
        api_tokens::authenticate(&state.app, token).await.map(Some)
    } else {
        accounts::authenticate(&state.app, token).await.map(Some)
    }
}

pub async fn post(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_json(&headers) {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "requests must have Content-Type: application/json",
            &request_id,
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "the body is not a GraphQL request",
                &request_id,
            );
        }
    };
    if let BatchRequest::Batch(items) = &batch {
        if items.len() > MAX_BATCH {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("a batch may hold at most {MAX_BATCH} operations"),
                &request_id,
            );
        }
        if items.is_empty() {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "the batch is empty",
                &request_id,
            );
        }
    }
    // Freshness: whatever any process committed before this request started is seen by it. The
    // database's change clock is read before anything kept between requests is trusted.
    // If the database cannot answer in time (a connection that stopped forwarding without
    // closing, say), nothing kept is trusted: the request fails instead of answering stale.
    let observed = tokio::time::timeout(state.config.max_execution, state.app.store.observe_changes()).await;
    if let Err(err) = observed
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::error!(error = %err, "reading the change clock");
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL",
            INTERNAL_MESSAGE,
            &request_id,
        );
    }
    let principal = match authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(DomainError::Internal(detail)) => {
            tracing::error!(detail = %detail, "authenticating");
            return error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                INTERNAL_MESSAGE,
                &request_id,
            );
        }
        Err(err) => {
            let mut response = error_body(StatusCode::UNAUTHORIZED, err.code(), &err.to_string(), &request_id);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    };
    let meta = RequestMeta {
        request_id: request_id.clone(),
        client_address: Some(client_address(&headers, peer, state.config.trust_forwarded_for)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    };
    let batcher = Batcher::new();
    let loaders = Arc::new(Loaders::new(
        &state.app,
        principal.clone(),
        &batcher,
        &state.shared_loads,
    ));
    // The cost limit, counted again in objects as unpaged lists come in.
    let request_state = Arc::new(RequestState::with_object_budget(
        principal,
        meta,
        state.config.cost.limit,
    ));
    let batch = state.parsed.prepare(batch).data(request_state.clone()).data(loaders);
    let (requests, single) = match batch {
        BatchRequest::Single(request) => (vec![request], true),
        BatchRequest::Batch(requests) => (requests, false),
    };
    // Priced before anything runs; the operations of one request share one budget.
    let model = &state.config.cost;
    let mut budget = model.limit;
    let mut costs = Vec::with_capacity(requests.len());
    let mut admitted = Vec::with_capacity(requests.len());
    for mut request in requests {
        let (operation, variables) = (request.operation_name.clone(), request.variables.clone());
        let cost = request
            .parsed_query()
            .ok()
            .and_then(|document| model.cost(document, operation.as_deref(), &variables));
        let refusal = match cost {
            Some(cost) if cost > model.limit => Some(format!(
                "this operation costs {cost}, more than the limit of {}: ask for smaller pages or fewer fields",
                model.limit
            )),
            Some(cost) if cost > budget => Some(format!(
                "the operations of this request together cost more than the limit of {}",
                model.limit
            )),
            Some(cost) => {
                budget -= cost;
                None
            }
            None => None,
        };
        costs.push(cost);
        admitted.push(match refusal {
            None => Ok(request),
            Some(message) => Err(too_costly(message, cost.unwrap_or_default(), model.limit)),
        });
    }
    let mut response = {
        // The semaphore is never closed; without a turn the request could not run at all.
        let Ok(_turn) = state.turns.acquire().await else {
            return error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL",
                INTERNAL_MESSAGE,
                &request_id,
            );
        };
        // Loaders' batches start whenever the execution waits with nothing else to do.
        let schema = &state.schema;
        let runs = futures_util::future::join_all(admitted.into_iter().map(|item| async move {
            match item {
                Ok(request) => schema.execute(request).await,
                Err(refused) => refused,
            }
        }));
        let execution = batch::drive(batcher, runs).instrument(tracing::Span::current());
        match tokio::time::timeout(state.config.max_execution, execution).await {
            Ok(mut responses) => {
                for (response, cost) in responses.iter_mut().zip(&costs) {
                    if let Some(cost) = cost {
                        response
                            .extensions
                            .insert("cost".to_owned(), cost_value(*cost, model.limit));
                    }
                }
                if single {
                    BatchResponse::Single(responses.pop().unwrap_or_default())
                } else {
                    BatchResponse::Batch(responses)
                }
            }
            Err(_) => {
                // Dropping the execution rolled back any transaction it had open.
                return error_body(
                    StatusCode::OK,
                    "BAD_USER_INPUT",
                    &format!(
                        "the request ran longer than {} ms and was stopped; ask for less at once",
                        state.config.max_execution.as_millis()
                    ),
                    &request_id,
                );
            }
        }
    };
    let errors: Vec<&mut Vec<ServerError>> = match &mut response {
        BatchResponse::Single(single) => vec![&mut single.errors],
        BatchResponse::Batch(items) => items.iter_mut().map(|r| &mut r.errors).collect(),
    };
    for list in errors {
        record_denials(&state, &request_state, list).await;
        sanitize(list, &request_id);
    }
    match serde_json::to_vec(&response) {
        Ok(body) if body.len() <= state.config.max_response_bytes => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(body) => {
            tracing::warn!(bytes = body.len(), "response over the size limit replaced by an error");
            error_body(
                StatusCode::OK,
                "BAD_USER_INPUT",
                &format!(
                    "the response would be {} bytes, more than the limit of {}; ask for smaller pages or fewer fields",
                    body.len(),
                    state.config.max_response_bytes
                ),
                &request_id,
            )
        }
        Err(err) => {
            tracing::error!(error = %err, "serializing a response");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                INTERNAL_MESSAGE,
                &request_id,
            )
        }
    }
}

fn cost_value(requested: usize, limit: usize) -> async_graphql::Value {
    async_graphql::Value::from_json(json!({ "requested": requested, "limit": limit })).unwrap_or_default()
}

/// The answer to an operation refused for its cost: nothing of it ran.
fn too_costly(message: String, requested: usize, limit: usize) -> async_graphql::Response {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", "BAD_USER_INPUT");
    extensions.set("cost", cost_value(requested, limit));
    error.extensions = Some(extensions);
    async_graphql::Response::from_errors(vec![error])
}

/// Writes an audit event for each mutation refused for a missing key inside an organization.
/// The refused change was rolled back with its transaction, so the event stands alone.
async fn record_denials(state: &HttpState, request: &RequestState, errors: &[ServerError]) {
    let Some(principal) = &request.principal else { return };
    for error in errors {
        let Some(async_graphql::PathSegment::Field(field)) = error.path.first() else {
            continue;
        };
        if !state.config.mutation_fields.contains(field) {
            continue;
        }
        let Some(DomainError::ForbiddenIn(inner, organization_id)) =
            error.source.as_ref().and_then(|s| s.downcast_ref::<DomainError>())
        else {
            continue;
        };
        let key = match inner.as_ref() {
            DomainError::Forbidden { key, .. } => key.as_deref(),
            _ => None,
        };
        let actor = audit::Actor {
            user_id: Some(principal.user.id),
            token_id: principal.token.map(|t| t.id),
        };
        if let Err(err) = audit::record_denial(&state.app, &request.meta, actor, *organization_id, field, key).await {
            tracing::error!(error = %err, "recording a refused mutation");
        }
    }
}

/// Gives every error a code and the request id. Errors raised before execution (syntax,
/// validation, limits) are the client's; an uncoded error from inside execution is treated as
/// internal and its text replaced, so nothing internal can reach the client by accident.
fn sanitize(errors: &mut [ServerError], request_id: &str) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            if error.path.is_empty() {
                extensions.set("code", "BAD_USER_INPUT");
            } else {
                tracing::error!(detail = %error.message, "uncoded resolver error");
                error.message = INTERNAL_MESSAGE.to_owned();
                extensions.set("code", "INTERNAL");
            }
        }
        extensions.set("requestId", request_id);
    }
}

/// A panic becomes a plain INTERNAL error; its text goes only to the log.
pub fn panic_response(detail: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = detail
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| detail.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(detail = %text, "handler panicked");
    let body = json!({ "errors": [{ "message": INTERNAL_MESSAGE, "extensions": { "code": "INTERNAL" } }] });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}
