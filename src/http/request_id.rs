//! Every request gets an id: in the response header, in every log line, in every error.
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The id of the current request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Accepts a caller's id when it is short and plain, otherwise makes one.
fn choose(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = choose(request.headers().get(HEADER));
    request.extensions_mut().insert(RequestId(id.clone()));
    // Only method and path are logged: never headers, bodies or query strings with secrets.
    // With traces on, the span is exported as the request's server span (named after the
    // route, never with the query string), a child of the caller's `traceparent`.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::adopt_caller(&span, &request);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "handled"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
