//! HTTP transport: the router, credential extraction, request ids, GraphiQL and health checks.
mod graphql_endpoint;
mod parsed;
mod request_id;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::domain::App;
use crate::graphql::GuildhallSchema;

pub use request_id::RequestId;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Transport settings.
#[derive(Clone, Debug, Default)]
pub struct HttpConfig {
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
    /// Root mutation fields, to audit refused mutations.
    pub mutation_fields: std::sync::Arc<std::collections::HashSet<String>>,
    /// GraphQL executions running at once (at least one).
    pub max_concurrent_operations: usize,
    /// Prices operations; its limit also bounds the operations of one request together.
    pub cost: Arc<crate::graphql::cost::CostModel>,
    /// Largest response body.
    pub max_response_bytes: usize,
    /// Longest a request's operations may run.
    pub max_execution: std::time::Duration,
}

#[derive(Clone)]
pub(crate) struct HttpState {
    pub app: Arc<App>,
    pub schema: GuildhallSchema,
    pub config: HttpConfig,
    pub parsed: parsed::ParsedDocuments,
    /// Turns to execute: requests beyond the limit wait, in arrival order.
    pub turns: Arc<tokio::sync::Semaphore>,
    /// Loaded rows shared between requests while the database is unchanged.
    pub shared_loads: Arc<crate::graphql::loaders::SharedLoads>,
}

/// The whole HTTP surface.
pub fn router(app: Arc<App>, schema: GuildhallSchema, config: HttpConfig) -> Router {
    let cors = cors_layer(&config.cors_origins);
    let shared_loads = Arc::new(crate::graphql::loaders::SharedLoads::new(
        app.settings.share_loaded_rows,
    ));
    let state = HttpState {
        app,
        schema,
        parsed: parsed::ParsedDocuments::default(),
        shared_loads,
        turns: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_operations.max(1))),
        config,
    };
    let mut router = Router::new()
        .route("/graphql", get(graphql_endpoint::get).post(graphql_endpoint::post))
        .route("/graphiql", get(graphiql))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
        .layer(CatchPanicLayer::custom(graphql_endpoint::panic_response))
        .layer(axum::middleware::from_fn(request_id::assign))
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            // Tracing and correlation headers that browser clients add (W3C trace context, and
            // a request id of their own) must pass the preflight too.
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static("traceparent"),
                header::HeaderName::from_static("tracestate"),
                header::HeaderName::from_static(request_id::HEADER),
                header::HeaderName::from_static("apollo-require-preflight"),
                header::HeaderName::from_static("x-apollo-operation-name"),
                header::HeaderName::from_static("graphql-preflight"),
            ])
            .expose_headers([header::HeaderName::from_static(request_id::HEADER)])
            .max_age(Duration::from_secs(600)),
    )
}

async fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Guildhall")
            .finish(),
    )
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ok" }))).into_response()
}

async fn readyz(axum::extract::State(state): axum::extract::State<HttpState>) -> Response {
    if state.app.store.ping().await {
        (StatusCode::OK, axum::Json(serde_json::json!({ "status": "ready" }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "database unreachable" })),
        )
            .into_response()
    }
}
