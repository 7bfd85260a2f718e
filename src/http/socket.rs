//! `/graphql` over a websocket: `graphql-transport-ws` (and the older `graphql-ws`) for
//! subscriptions, and only for them, with the protections of HTTP: the credential is checked
//! when the connection starts (from `connection_init`'s `Authorization`, or the upgrade
//! request's header), again for every operation, and again as each subscription runs; every
//! document is parsed and priced whole and refused the same way; a subscription selects one root
//! field; each event is held to the response size limit; errors are masked. Queries and
//! mutations go over HTTP, where each request has its turn, deadline and size limit, and
//! refused mutations are audited.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request, Response, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::FromRequestParts;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::HttpState;
use super::graphql_endpoint::{error_body, sanitize};
use super::parsed::{self, WireRequest, refusal};
use crate::domain::RequestMeta;
use crate::graphql::batch::Batcher;
use crate::graphql::context::RequestState;
use crate::graphql::loaders::Loaders;
use crate::graphql::subscription::Credential;

/// Whether a request asks to become a websocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who a connection signed in as, set once by `connection_init`.
struct Connection {
    credential: Credential,
}

/// Runs the operations of one websocket connection.
#[derive(Clone)]
struct SocketExecutor {
    state: HttpState,
    meta: RequestMeta,
    connection: Arc<OnceLock<Connection>>,
    /// Operations of this connection running now.
    running: Arc<AtomicUsize>,
}

/// Takes a place among a connection's running operations, given back when dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refused(error: ServerError, request_id: &str) -> Response {
    let mut errors = vec![error];
    sanitize(&mut errors, request_id);
    Response::from_errors(errors)
}

impl SocketExecutor {
    /// The stream of responses of one operation, or the one response refusing it.
    async fn prepare(&self, request: Request) -> Result<BoxStream<'static, Response>, Response> {
        let request_id = self.meta.request_id.clone();
        let refuse = |code: &str, message: String| refused(refusal(code, message, None), &request_id);
        let Some(connection) = self.connection.get() else {
            return Err(refuse("UNAUTHENTICATED", "send connection_init first".to_owned()));
        };
        let wire = WireRequest {
            query: Some(request.query).filter(|q| !q.is_empty()),
            operation_name: request.operation_name,
            variables: serde_json::to_value(request.variables).ok(),
            extensions: serde_json::to_value(request.extensions).ok(),
        };
        let parsed::Prepared { mut request, document } =
            self.state.parsed.prepare(wire).map_err(|e| refused(e, &request_id))?;
        // The socket carries subscriptions only: queries and mutations go over HTTP, where every
        // request has its turn, its deadline, its size limit and (for mutations) its audit.
        if parsed::operation_type(&mut request) != Some(OperationType::Subscription) {
            return Err(refuse(
                "BAD_USER_INPUT",
                "the websocket carries subscriptions; send queries and mutations over HTTP (POST /graphql)".to_owned(),
            ));
        }
        let model = &self.state.config.cost;
        let operation = request.operation_name.clone();
        let variables = request.variables.clone();
        if let Some(message) = model
            .measure(&document, &variables)
            .refusal(model.limit, model.max_depth)
        {
            return Err(refuse("BAD_USER_INPUT", message));
        }
        if parsed::root_field_count(&mut request) != 1 {
            return Err(refuse(
                "BAD_USER_INPUT",
                "a subscription selects exactly one root field".to_owned(),
            ));
        }
        let limit = self.state.config.max_subscriptions_per_connection.max(1);
        if self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_err()
        {
            return Err(refuse(
                "BAD_USER_INPUT",
                format!("a connection may run at most {limit} subscriptions at once; complete one first"),
            ));
        }
        let running = Running(self.running.clone());
        // Freshness, as for every HTTP request: nothing kept from before this moment is trusted.
        let observed =
            tokio::time::timeout(self.state.config.max_execution, self.state.app.store.observe_changes()).await;
        if !matches!(observed, Ok(Ok(()))) {
            let err = crate::domain::DomainError::Unavailable(String::new());
            return Err(refuse(err.code(), err.to_string()));
        }
        // The credential is checked again for every operation: a token revoked or a session
        // ended since the connection began opens nothing new.
        let principal = match &connection.credential.0 {
            None => None,
            Some(bearer) => match crate::domain::authenticate(&self.state.app, bearer).await {
                Ok(principal) => Some(principal),
                Err(crate::domain::DomainError::Internal(detail)) => {
                    tracing::error!(detail = %detail, "authenticating a websocket operation");
                    return Err(refuse("INTERNAL", crate::graphql::error::INTERNAL_MESSAGE.to_owned()));
                }
                Err(err) => return Err(refuse(err.code(), err.to_string())),
            },
        };
        let loaders = Arc::new(Loaders::new(
            &self.state.app,
            principal.clone(),
            &Batcher::new(),
            &self.state.shared_loads,
        ));
        let request_state = Arc::new(RequestState::with_object_budget(
            principal,
            self.meta.clone(),
            model.limit,
        ));
        let request = request
            .data(request_state)
            .data(loaders)
            .data(connection.credential.clone());
        let shape = self.state.config.shape.clone();
        let max_bytes = self.state.config.max_response_bytes;
        let active = self.state.app.store.metrics.subscription_started();
        let responses = self.state.schema.execute_stream(request).map(move |mut response| {
            let _running = &running;
            let _active = &active;
            shape.conform(&document, operation.as_deref(), &variables, &mut response.data);
            sanitize(&mut response.errors, &request_id);
            // Each event is held to the size limit of an HTTP response.
            let bytes = serde_json::to_vec(&response).map(|b| b.len()).unwrap_or(usize::MAX);
            if bytes > max_bytes {
                return refused(
                    refusal(
                        "BAD_USER_INPUT",
                        format!(
                            "this event would be {bytes} bytes, more than the limit of {max_bytes}; select fewer fields"
                        ),
                        None,
                    ),
                    &request_id,
                );
            }
            response
        });
        Ok(responses.boxed())
    }
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        let mut responses = match self.prepare(request).await {
            Ok(responses) => responses,
            Err(refusal) => return refusal,
        };
        responses.next().await.unwrap_or_default()
    }

    fn execute_stream(&self, request: Request, _session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let executor = self.clone();
        futures_util::stream::once(async move {
            match executor.prepare(request).await {
                Ok(responses) => responses,
                Err(refusal) => futures_util::stream::once(async move { refusal }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// The bearer credential of `connection_init`'s payload (`Authorization`, any case, at the top
/// or under `headers`), else of the upgrade request.
fn bearer(payload: &serde_json::Value, upgrade_header: Option<&str>) -> Option<String> {
    let find = |object: &serde_json::Value| {
        object.as_object().and_then(|map| {
            map.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
                .and_then(|(_, value)| value.as_str().map(str::to_owned))
        })
    };
    find(payload)
        .or_else(|| payload.get("headers").and_then(find))
        .or_else(|| upgrade_header.map(str::to_owned))
}

/// Answers a websocket upgrade of `/graphql`.
pub async fn upgrade(state: HttpState, meta: RequestMeta, mut parts: Parts) -> HttpResponse {
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(protocol) => protocol,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    if !origin_allowed(&parts.headers, &state.config.cors_origins) {
        return error_body(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this origin may not open a websocket here",
            &meta.request_id,
        );
    }
    let upgrade_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let executor = SocketExecutor {
        state: state.clone(),
        meta,
        connection: Arc::new(OnceLock::new()),
        running: Arc::new(AtomicUsize::new(0)),
    };
    let connection = executor.connection.clone();
    let metrics = state.app.store.metrics.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let open = metrics.websocket_opened();
            let served = GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| async move {
                    let value = bearer(&payload, upgrade_header.as_deref());
                    state.app.store.observe_changes().await.map_err(|_| {
                        async_graphql::Error::new(crate::domain::DomainError::Unavailable(String::new()).to_string())
                    })?;
                    super::graphql_endpoint::authenticate_bearer(&state, value.as_deref())
                        .await
                        .map_err(|err| match err {
                            crate::domain::DomainError::Internal(detail) => {
                                tracing::error!(detail = %detail, "authenticating a websocket");
                                async_graphql::Error::new(crate::graphql::error::INTERNAL_MESSAGE)
                            }
                            other => async_graphql::Error::new(other.to_string()),
                        })?;
                    let token = value.as_deref().and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                            .map(|t| Arc::<str>::from(t.trim()))
                    });
                    let _ = connection.set(Connection {
                        credential: Credential(token),
                    });
                    Ok(Data::default())
                })
                .serve();
            async move {
                served.await;
                drop(open);
            }
        })
}

/// A browser's websocket is not subject to CORS: its `Origin` is checked here instead against
/// the same list (or the server's own host when none is configured).
fn origin_allowed(headers: &HeaderMap, cors_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser: nothing ambient to abuse.
        return true;
    };
    if cors_origins.iter().any(|allowed| allowed.trim() == origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}
