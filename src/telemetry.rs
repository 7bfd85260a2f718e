//! Traces for operators, off unless `--otlp-endpoint` is given: each request, each root or
//! paged field, each batched load and each write transaction becomes an OpenTelemetry span,
//! exported over OTLP/HTTP to a collector. A caller's W3C `traceparent` header makes the
//! request's span a child of the caller's; the request id stays, as an attribute of the span.
//!
//! Spans of note are made with the target [`TARGET`], which the log output never shows: with
//! traces off nothing is interested in them, so they cost an atomic load at each call site.
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of spans made for traces only.
pub const TARGET: &str = "guildhall::trace";

static ENABLED: AtomicBool = AtomicBool::new(false);
static HONOUR_TRACEPARENT: AtomicBool = AtomicBool::new(true);

/// Whether traces are being exported (the schema adds its field spans only then).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Where and how spans are sent.
#[derive(Clone, Debug)]
pub struct Exporting {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`) or its full traces URL.
    pub endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub protocol: String,
    pub service_name: String,
    /// Whether a caller's `traceparent` is continued (see `--otlp-honour-traceparent`).
    pub honour_traceparent: bool,
}

/// The running exporter; [`Tracing::shutdown`] sends what is still queued.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracing")
    }
}

/// The traces URL for an endpoint: a base URL gets OTLP's `/v1/traces` path.
fn traces_url(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim();
    if endpoint.starts_with("https://") {
        return Err(
            "the OTLP endpoint must be plain http:// (send to a collector on the host or beside it, which forwards over TLS)"
                .to_owned(),
        );
    }
    if !endpoint.starts_with("http://") {
        return Err(format!("the OTLP endpoint {endpoint:?} is not an http:// URL"));
    }
    let trimmed = endpoint.trim_end_matches('/');
    Ok(if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    })
}

impl Tracing {
    /// Builds the exporter and the layer that feeds it. Call outside the async runtime: the
    /// exporter's HTTP client runs on a thread of its own.
    pub fn start<S>(exporting: &Exporting) -> Result<(Tracing, impl tracing_subscriber::Layer<S> + 'static), String>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let protocol = match exporting.protocol.as_str() {
            "http/protobuf" => Protocol::HttpBinary,
            "http/json" => Protocol::HttpJson,
            other => {
                return Err(format!(
                    "unknown OTLP protocol {other:?}: use http/protobuf or http/json"
                ));
            }
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(traces_url(&exporting.endpoint)?)
            .build()
            .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(exporting.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("guildhall");
        HONOUR_TRACEPARENT.store(exporting.honour_traceparent, Ordering::Relaxed);
        ENABLED.store(true, Ordering::Relaxed);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false);
        Ok((Tracing { provider }, layer))
    }

    /// Exports what is queued and stops. Blocks; call outside the async runtime.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("exporting the last spans failed: {err}");
        }
    }
}

/// Header access for the W3C trace-context propagator.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The name of a request's span: its route, never the caller's own path text (which would
/// make a new span name of every path asked for).
fn route_name(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphiql" => "/graphiql",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        p if p.starts_with("/graphiql/") => "/graphiql/*",
        _ => "(unrouted)",
    }
}

/// Makes `span` (the request's) a child of the caller's trace when the request carries a valid
/// `traceparent` (and `tracestate`) and callers are trusted with it, names it after the route,
/// and records the trace id on it for the log. Does nothing with traces off.
pub fn adopt_caller(span: &tracing::Span, request: &axum::extract::Request) {
    if !enabled() {
        return;
    }
    if HONOUR_TRACEPARENT.load(Ordering::Relaxed) {
        let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
        let _ = span.set_parent(parent);
    }
    span.record(
        "otel.name",
        tracing::field::display(format_args!(
            "{} {}",
            request.method(),
            route_name(request.uri().path())
        )),
    );
    span.record("otel.kind", "server");
    let trace_id = {
        use opentelemetry::trace::TraceContextExt;
        span.context().span().span_context().trace_id()
    };
    span.record("trace_id", tracing::field::display(trace_id));
}
