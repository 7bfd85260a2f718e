//! HTTP transport: the router, credential extraction, request ids, GraphiQL and health checks.
mod graphql_endpoint;
mod parsed;
mod request_id;
mod socket;
mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
    /// GraphQL executions running at once (at least one).
    pub max_concurrent_operations: usize,
    /// Prices operations; its limit also bounds the operations of one request together.
    pub cost: Arc<crate::graphql::cost::CostModel>,
    /// Whether loaded rows are shared between requests while the database is unchanged.
    pub share_loaded_rows: bool,
    /// Puts responses in the shape the specification requires (key order, null propagation).
    pub shape: Arc<crate::graphql::shape::ResponseShape>,
    /// Largest response body.
    pub max_response_bytes: usize,
    /// Longest a request's operations may run.
    pub max_execution: std::time::Duration,
    /// Operations one websocket connection may run at once.
    pub max_subscriptions_per_connection: usize,
}

#[derive(Clone)]
pub(crate) struct HttpState {
    pub app: Arc<App>,
    /// Runs queries and subscriptions.
    pub schema: GuildhallSchema,
    /// Runs mutations (the same schema, with the audit of refused mutations).
    pub mutation_schema: GuildhallSchema,
    pub config: HttpConfig,
    pub parsed: parsed::ParsedDocuments,
    /// Turns to execute: requests beyond the limit wait, in arrival order.
    pub turns: Arc<tokio::sync::Semaphore>,
    /// Loaded rows shared between requests while the database is unchanged.
    pub shared_loads: Arc<crate::graphql::loaders::SharedLoads>,
}

/// The schemas the server runs: see [`crate::graphql::build_for_mutations`].
pub struct Schemas {
    pub queries: GuildhallSchema,
    pub mutations: GuildhallSchema,
}

/// The whole HTTP surface.
pub fn router(app: Arc<App>, schemas: Schemas, config: HttpConfig) -> Router {
    let cors = cors_layer(&config.cors_origins);
    let shared_loads = Arc::new(crate::graphql::loaders::SharedLoads::new(
        config.share_loaded_rows,
        &app.store.writes,
        &app.store.metrics,
    ));
    let state = HttpState {
        app,
        schema: schemas.queries,
        mutation_schema: schemas.mutations,
        parsed: parsed::ParsedDocuments::default(),
        shared_loads,
        turns: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_operations.max(1))),
        config,
    };
    let mut router =
        Router::new()
            .route(
                "/graphql",
                get(graphql_endpoint::get).post(graphql_endpoint::post).route_layer(
                    axum::middleware::from_fn_with_state(state.clone(), graphql_endpoint::observe),
                ),
            )
            .route("/graphiql", get(graphiql))
            .route("/graphiql/{name}", get(graphiql_asset))
            .route("/unsubscribe", get(unsubscribe::show).post(unsubscribe::confirm))
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

/// GraphiQL's files, built into the binary: pinned production builds from npm (see
/// `assets/graphiql/VERSIONS` and `scripts/refresh-graphiql-assets`) and a page of our own with
/// no inline script, so it works offline and under a strict Content-Security-Policy.
const GRAPHIQL_FILES: [(&str, &str, &[u8]); 7] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../assets/graphiql/index.html"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/init.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/style.css"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
];

/// The policy GraphiQL's page is served under: nothing but this origin, with two exceptions
/// GraphiQL's own build needs: its stylesheet embeds its fonts as `data:` URIs, and its settings
/// dialog inserts one fixed `<style>` element, allowed by its hash (the browser test opens the
/// dialog, so an upgrade that changes it fails there first).
pub const GRAPHIQL_CSP: &str =
    "default-src 'self'; font-src data:; style-src 'self' 'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='";

fn graphiql_file(name: &str) -> Response {
    let found = GRAPHIQL_FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, mime, body)| (*mime, *body));
    let Some((mime, body)) = found else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if name == "index.html" {
        "no-cache"
    } else {
        "public, max-age=3600"
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_SECURITY_POLICY, GRAPHIQL_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn graphiql() -> Response {
    graphiql_file("index.html")
}

async fn graphiql_asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    graphiql_file(&name)
}

/// The operators' surface, served on its own listen address (`--metrics-bind`): `/metrics` in
/// the Prometheus text format.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(app)
}

async fn metrics(axum::extract::State(app): axum::extract::State<Arc<App>>) -> Response {
    let (size, idle, max) = app.store.pool_state();
    // Two indexed counts, bounded in time: a scrape never waits long for a busy pool. When they
    // cannot be read, the outbox reads -1 (an alert on "pending > N" must not go quiet).
    let depth = tokio::time::timeout(
        Duration::from_secs(2),
        crate::domain::mailer::outbox_depth(&app.store.conn),
    )
    .await;
    let (pending, failed) = match depth {
        Ok(Ok((pending, failed))) => (pending as i64, failed as i64),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "reading the mail outbox for metrics");
            (-1, -1)
        }
        Err(_) => {
            tracing::warn!("reading the mail outbox for metrics timed out");
            (-1, -1)
        }
    };
    let snapshot = crate::metrics::Snapshot {
        pool_in_use: i64::from(size) - idle as i64,
        pool_idle: idle as i64,
        pool_max: i64::from(max),
        outbox_pending: pending,
        outbox_failed: failed,
        invalidations: app.store.writes.generation().unwrap_or(1).saturating_sub(1),
    };
    match app.store.metrics.render(&snapshot) {
        Some(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
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
