//! `/graphql` over HTTP: POST with a JSON body (one operation or a batch), and GET for queries
//! only. Nothing else runs an operation: a `text/plain` or form POST is refused (a browser sends
//! those cross-site without a preflight), a GET must carry a header a browser cannot add
//! cross-site without asking first, and a mutation is never run over GET. Credentials are checked
//! before anything executes, and each operation is priced before it runs.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchResponse, ServerError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use tracing::Instrument;

use super::parsed::{self, Prepared, WireBody, WireRequest};
use super::{HttpState, RequestId};
use crate::domain::{DomainError, Principal, RequestMeta};
use crate::graphql::batch::{self, Batcher};
use crate::graphql::context::RequestState;
use crate::graphql::error::INTERNAL_MESSAGE;
use crate::graphql::loaders::Loaders;

pub(super) fn error_body(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code, "requestId": request_id } }] });
    (status, Json(body)).into_response()
}

/// The answer when the database cannot be reached: 503, `UNAVAILABLE`, and when to retry.
fn unavailable(request_id: &str) -> Response {
    let err = DomainError::Unavailable(String::new());
    let mut response = error_body(
        StatusCode::SERVICE_UNAVAILABLE,
        err.code(),
        &err.to_string(),
        request_id,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// Headers that show a GET was not sent by a page on another site: a browser adds none of them
/// cross-site without a preflight the CORS policy answers (Apollo Router's rule, and any
/// credential header, which would need a preflight too).
const PREFLIGHTED_HEADERS: [&str; 4] = [
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
    "authorization",
];

fn preflighted(headers: &HeaderMap) -> bool {
    PREFLIGHTED_HEADERS.iter().any(|name| headers.contains_key(*name)) || is_json(headers)
}

/// `GET /graphql?query=...`: queries only, and only with a header that needed a preflight; or
/// the upgrade to a websocket for subscriptions.
pub async fn get(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    if super::socket::is_upgrade(&parts.headers) {
        let meta = request_meta(&state, &parts.headers, peer, &request_id);
        return super::socket::upgrade(state, meta, parts).await;
    }
    let headers = parts.headers;
    let params = Query::<HashMap<String, String>>::try_from_uri(&parts.uri);
    if !preflighted(&headers) {
        return error_body(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "a GET request must carry a header that needs a preflight (`apollo-require-preflight: true`, `graphql-preflight: 1` or `Authorization`), so that no other site can send it; or send POST with Content-Type: application/json",
            &request_id,
        );
    }
    let Ok(Query(mut params)) = params else {
        return error_body(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "the query string is not a GraphQL request",
            &request_id,
        );
    };
    // `variables` and `extensions` travel as JSON text in the query string.
    let mut json_param = |name: &str| -> Result<Option<serde_json::Value>, String> {
        match params.remove(name) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| format!("`{name}` must be JSON")),
        }
    };
    let (variables, extensions) = match (json_param("variables"), json_param("extensions")) {
        (Ok(v), Ok(e)) => (v, e),
        (Err(message), _) | (_, Err(message)) => {
            return error_body(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &message, &request_id);
        }
    };
    let wire = WireRequest {
        query: params.remove("query"),
        operation_name: params.remove("operationName"),
        variables,
        extensions,
    };
    let mut prepared = state.parsed.prepare(wire);
    if let Ok(ready) = &mut prepared
        && matches!(
            parsed::operation_type(&mut ready.request),
            Some(OperationType::Mutation | OperationType::Subscription)
        )
    {
        let mut response = error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "only queries may be sent with GET: send mutations as POST with Content-Type: application/json, and subscriptions over a websocket",
            &request_id,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
        return response;
    }
    execute(&state, peer, request_id, &headers, vec![prepared], true).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.eq_ignore_ascii_case("application/graphql-response+json")
        })
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

/// Facts about a request kept with what it does (audit events).
pub(super) fn request_meta(state: &HttpState, headers: &HeaderMap, peer: SocketAddr, request_id: &str) -> RequestMeta {
    RequestMeta {
        request_id: request_id.to_owned(),
        client_address: Some(client_address(headers, peer, state.config.trust_forwarded_for)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
    }
}

/// The caller a bearer credential names (`None` without one).
pub(super) async fn authenticate_bearer(
    state: &HttpState,
    value: Option<&str>,
) -> Result<Option<Principal>, DomainError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| DomainError::Unauthenticated("use Authorization: Bearer <token>".to_owned()))?;
    crate::domain::authenticate(&state.app, token).await.map(Some)
}

async fn authenticate(state: &HttpState, headers: &HeaderMap) -> Result<Option<Principal>, DomainError> {
    let value = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| DomainError::unauthenticated())?),
    };
    authenticate_bearer(state, value).await
}

/// `POST /graphql` with a JSON body.
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
    let (items, single) = match serde_json::from_slice::<WireBody>(&body) {
        Ok(WireBody::Single(item)) => (vec![item], true),
        Ok(WireBody::Batch(items)) if items.is_empty() => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "the batch is empty",
                &request_id,
            );
        }
        Ok(WireBody::Batch(items)) => (items, false),
        Err(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "the body is not a GraphQL request: send {\"query\": \"...\", \"variables\": {...}} or a list of them",
                &request_id,
            );
        }
    };
    let prepared = items.into_iter().map(|item| state.parsed.prepare(item)).collect();
    execute(&state, peer, request_id, &headers, prepared, single).await
}

/// Runs prepared operations (or answers why each could not be prepared) as one request.
async fn execute(
    state: &HttpState,
    peer: SocketAddr,
    request_id: String,
    headers: &HeaderMap,
    prepared: Vec<Result<Prepared, ServerError>>,
    single: bool,
) -> Response {
    // Freshness: whatever any process committed before this request started is seen by it. The
    // database's change clock is read before anything kept between requests is trusted.
    // If the database cannot answer in time (a connection that stopped forwarding without
    // closing, say), nothing kept is trusted: the request fails instead of answering stale.
    let observed = tokio::time::timeout(state.config.max_execution, state.app.store.observe_changes()).await;
    if let Err(err) = observed
        .map_err(|_| "timed out".to_owned())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::warn!(error = %err, "reading the change clock");
        return unavailable(&request_id);
    }
    let principal = match authenticate(state, headers).await {
        Ok(principal) => principal,
        Err(DomainError::Unavailable(detail)) => {
            tracing::warn!(detail = %detail, "authenticating");
            return unavailable(&request_id);
        }
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
    let meta = request_meta(state, headers, peer, &request_id);
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
    // Priced before anything runs; the operations of one request share one budget.
    let model = &state.config.cost;
    let mut budget = model.limit;
    let mut costs = Vec::with_capacity(prepared.len());
    let mut admitted = Vec::with_capacity(prepared.len());
    // What each response's shape is checked against: its document, operation and variables.
    let mut shapes = Vec::with_capacity(prepared.len());
    // Each operation's name and kind, for the operators' metrics.
    let mut kinds: Vec<(Option<String>, &'static str)> = Vec::with_capacity(prepared.len());
    for item in prepared {
        let Prepared { mut request, document } = match item {
            Ok(prepared) => prepared,
            Err(refused) => {
                kinds.push((None, "none"));
                costs.push(None);
                shapes.push(None);
                admitted.push(Err(async_graphql::Response::from_errors(vec![refused])));
                continue;
            }
        };
        let (operation, variables) = (request.operation_name.clone(), request.variables.clone());
        // The whole document is priced (validation reads all of it), whichever operation runs.
        let measure = model.measure(&document, &variables);
        let cost = measure.cost;
        let refusal = match measure.refusal(model.limit, model.max_depth) {
            Some(refusal) => Some(refusal),
            None if measure.cost > budget => Some(format!(
                "the operations of this request together cost more than the limit of {}",
                model.limit
            )),
            None => {
                budget -= measure.cost;
                None
            }
        };
        // Mutations run on the schema that audits their refusals.
        let kind = parsed::operation_type(&mut request);
        let mutation = kind == Some(OperationType::Mutation);
        kinds.push((
            operation_label(&document, operation.as_deref()),
            match kind {
                Some(OperationType::Query) => "query",
                Some(OperationType::Mutation) => "mutation",
                Some(OperationType::Subscription) => "subscription",
                None => "none",
            },
        ));
        shapes.push(Some((document, operation, variables)));
        costs.push(Some(cost));
        admitted.push(match refusal {
            None => Ok((request.data(request_state.clone()).data(loaders.clone()), mutation)),
            Some(message) => Err(too_costly(message, cost, model.limit)),
        });
    }
    let mut response = {
        // The semaphore is never closed; without a turn the request could not run at all.
        let waiting = std::time::Instant::now();
        let turn = state.turns.acquire().await;
        state.app.store.metrics.waited_for_turn(waiting.elapsed());
        let Ok(_turn) = turn else {
            return error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "INTERNAL",
                INTERNAL_MESSAGE,
                &request_id,
            );
        };
        // Loaders' batches start whenever the execution waits with nothing else to do.
        let runs = futures_util::future::join_all(admitted.into_iter().map(|item| async move {
            match item {
                Ok((request, true)) => state.mutation_schema.execute(request).await,
                Ok((request, false)) => state.schema.execute(request).await,
                Err(refused) => refused,
            }
        }));
        let execution = batch::drive(batcher, runs).instrument(tracing::Span::current());
        match tokio::time::timeout(state.config.max_execution, execution).await {
            Ok(mut responses) => {
                for (response, shape) in responses.iter_mut().zip(&shapes) {
                    if let Some((document, operation, variables)) = shape {
                        state
                            .config
                            .shape
                            .conform(document, operation.as_deref(), variables, &mut response.data);
                    }
                }
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
                return answered_all(
                    &kinds,
                    "BAD_USER_INPUT",
                    error_body(
                        StatusCode::OK,
                        "BAD_USER_INPUT",
                        &format!(
                            "the request ran longer than {} ms and was stopped; ask for less at once",
                            state.config.max_execution.as_millis()
                        ),
                        &request_id,
                    ),
                );
            }
        }
    };
    let errors: Vec<&mut Vec<ServerError>> = match &mut response {
        BatchResponse::Single(single) => vec![&mut single.errors],
        BatchResponse::Batch(items) => items.iter_mut().map(|r| &mut r.errors).collect(),
    };
    for list in errors {
        sanitize(list, &request_id);
    }
    let outcomes: Vec<&str> = match &response {
        BatchResponse::Single(single) => vec![outcome_of(&single.errors)],
        BatchResponse::Batch(items) => items.iter().map(|r| outcome_of(&r.errors)).collect(),
    };
    let body = serde_json::to_vec(&response);
    // A response replaced by an error is counted as that error.
    let replaced_by = match &body {
        Ok(body) if body.len() > state.config.max_response_bytes => Some("BAD_USER_INPUT"),
        Err(_) => Some("INTERNAL"),
        Ok(_) => None,
    };
    let answered = Answered(
        kinds
            .into_iter()
            .zip(outcomes)
            .map(|((name, kind), outcome)| (name, kind, replaced_by.unwrap_or(outcome).to_owned()))
            .collect(),
    );
    let mut response = match body {
        Ok(body) if body.len() <= state.config.max_response_bytes => (
            [
                (header::CONTENT_TYPE, "application/json"),
                // Answers depend on the caller: no shared cache may keep one (GET included).
                (header::CACHE_CONTROL, "private, no-store"),
                (header::VARY, "Authorization"),
            ],
            body,
        )
            .into_response(),
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
    };
    response.extensions_mut().insert(answered);
    response
}

/// The label of an operation name that selects no operation of its document.
const OTHER_OPERATION: &str = "other";

/// The name an operation is counted under: the name given if it names an operation of the
/// document (else `other`), or the document's only operation's name when none was given.
fn operation_label(document: &async_graphql::parser::types::ExecutableDocument, name: Option<&str>) -> Option<String> {
    use async_graphql::parser::types::DocumentOperations;
    let DocumentOperations::Multiple(operations) = &document.operations else {
        return name.map(|_| OTHER_OPERATION.to_owned());
    };
    match name {
        Some(name) if operations.keys().any(|key| key.as_str() == name) => Some(name.to_owned()),
        Some(_) => Some(OTHER_OPERATION.to_owned()),
        None if operations.len() == 1 => operations.keys().next().map(|key| key.to_string()),
        None => None,
    }
}

/// The operations a response answered: name, kind and outcome (`ok` or the first error's code),
/// for the operators' metrics; a response without it answered none (refused before parsing).
#[derive(Clone, Debug)]
pub(super) struct Answered(pub Vec<(Option<String>, &'static str, String)>);

fn answered_all(kinds: &[(Option<String>, &'static str)], outcome: &str, mut response: Response) -> Response {
    let answered = kinds
        .iter()
        .map(|(name, kind)| (name.clone(), *kind, outcome.to_owned()))
        .collect();
    response.extensions_mut().insert(Answered(answered));
    response
}

fn outcome_of(errors: &[ServerError]) -> &str {
    match errors.first() {
        None => "ok",
        Some(error) => match error.extensions.as_ref().and_then(|e| e.get("code")) {
            Some(async_graphql::Value::String(code)) => code.as_str(),
            _ => "INTERNAL",
        },
    }
}

/// Counts each `/graphql` request for the operators: its operations by name, kind and outcome
/// with the time it took, and the statements it ran.
pub(super) async fn observe(
    State(state): State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if super::socket::is_upgrade(request.headers()) {
        return next.run(request).await;
    }
    let started = std::time::Instant::now();
    let statements = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let response = crate::metrics::counting_statements(statements.clone(), next.run(request)).await;
    let elapsed = started.elapsed();
    let metrics = &state.app.store.metrics;
    metrics.request_statements(statements.load(std::sync::atomic::Ordering::Relaxed));
    match response.extensions().get::<Answered>() {
        Some(Answered(operations)) => {
            for (name, kind, outcome) in operations {
                metrics.operation(name.as_deref(), kind, outcome, elapsed);
            }
        }
        None => {
            let outcome = match response.status() {
                StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
                status if status.is_server_error() => "INTERNAL",
                _ => "BAD_USER_INPUT",
            };
            metrics.operation(None, "none", outcome, elapsed);
        }
    }
    response
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

/// Gives every error a code and the request id. Errors raised before execution (syntax,
/// validation, limits) are the client's; an uncoded error from inside execution is treated as
/// internal and its text replaced, so nothing internal can reach the client by accident.
pub(super) fn sanitize(errors: &mut [ServerError], request_id: &str) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            if error.path.is_empty() || is_coercion_failure(&error.message) {
                extensions.set("code", "BAD_USER_INPUT");
                if error.message.contains('\n') {
                    error.message = error.message.split_whitespace().collect::<Vec<_>>().join(" ");
                }
            } else {
                tracing::error!(detail = %error.message, "uncoded resolver error");
                error.message = INTERNAL_MESSAGE.to_owned();
                extensions.set("code", "INTERNAL");
            }
        }
        extensions.set("requestId", request_id);
    }
}

/// Whether an uncoded error is an argument that did not coerce to its type (a `DateTime` that is
/// not RFC 3339, an `Int` out of range): the client's mistake, found as the field resolved.
fn is_coercion_failure(message: &str) -> bool {
    message.starts_with("Failed to parse \"")
        || message.starts_with("Expected input type \"")
        || message.starts_with("Invalid value for argument")
        || (message.starts_with("Variable ") && message.contains(" is not defined"))
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
