//! Traces over OTLP/HTTP: a `serve` process given `--otlp-endpoint` sends its spans to a
//! collector (here one the test serves on 127.0.0.1, reading OTLP's JSON encoding). A request's
//! span continues the caller's `traceparent` and keeps the request id; the operation, its root
//! and paged fields, its batched loads and its write transactions are spans beneath it.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::{fresh_database_url, spawn_with, test_args};
use crate::processes::Process;

/// Spans the collector received, flattened: (resource attributes, span).
type Received = Arc<Mutex<Vec<(Value, Value)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                let mut kept = kept.lock().expect("lock");
                for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                    for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                        for span in scope["spans"].as_array().into_iter().flatten() {
                            kept.push((resource["resource"].clone(), span.clone()));
                        }
                    }
                }
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn attribute(item: &Value, key: &str) -> Option<String> {
    item["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let value = &a["value"];
            value["stringValue"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string())
        })
}

/// Waits until `wanted` finds its spans among those received.
async fn until<T>(received: &Received, what: &str, wanted: impl Fn(&[(Value, Value)]) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = wanted(&received.lock().expect("lock")) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not among {:#?}",
            received
                .lock()
                .expect("lock")
                .iter()
                .map(|(_, s)| (s["name"].clone(), s["traceId"].clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const MEMBERS: &str = "query Members { organization(slug: \"acme\") { members(first: 10) { totalCount
  edges { node { user { name } roleBindings { role { name } } } } } } }";

#[tokio::test]
async fn spans_reach_the_collector_under_the_callers_trace_with_the_request_id() {
    let database_url = fresh_database_url().await;
    let setup = spawn_with(test_args(&database_url)).await;
    let owner = setup.sign_up("owner@example.com", "Owner").await;
    let organization = setup.create_organization(&owner, "acme").await;
    setup.stop().await;

    let (endpoint, received) = collector().await;
    let server = Process::start_with(
        &database_url,
        &["--otlp-endpoint", &endpoint, "--otlp-protocol", "http/json"],
    )
    .await;
    let ask = |query: &'static str, variables: Value, headers: Vec<(&'static str, String)>| {
        let mut request = server
            .client
            .post(format!("{}/graphql", server.url))
            .bearer_auth(&owner.access_token)
            .json(&json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.expect("request");
            let id = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (id, response.json::<Value>().await.expect("JSON"))
        }
    };

    // A query, sent as a child of the caller's span.
    let (id, body) = ask(
        MEMBERS,
        json!({}),
        vec![
            ("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")),
            ("x-request-id", "traced-1".to_owned()),
        ],
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(id.as_deref(), Some("traced-1"));
    let spans = until(&received, "the query's spans", |all| {
        let trace: Vec<Value> = all
            .iter()
            .filter(|(_, s)| s["traceId"] == CALLER_TRACE)
            .map(|(_, s)| s.clone())
            .collect();
        let names: Vec<&str> = trace.iter().filter_map(|s| s["name"].as_str()).collect();
        [
            "POST /graphql",
            "graphql Members",
            "Query.organization",
            "Organization.members",
        ]
        .iter()
        .all(|n| names.contains(n))
        .then_some(trace)
    })
    .await;
    let named = |name: &str| spans.iter().find(|s| s["name"] == name).expect("span").clone();
    let request = named("POST /graphql");
    assert_eq!(request["parentSpanId"], CALLER_SPAN, "{request}");
    assert_eq!(
        attribute(&request, "request_id").as_deref(),
        Some("traced-1"),
        "{request}"
    );
    assert_eq!(attribute(&request, "http.response.status_code").as_deref(), Some("200"));
    // Every other span of the trace descends from the request's.
    let by_id = |id: &Value| spans.iter().find(|s| &s["spanId"] == id).cloned();
    for span in spans.iter().filter(|s| s["spanId"] != request["spanId"]) {
        let mut at = span.clone();
        let mut hops = 0;
        while at["spanId"] != request["spanId"] {
            at =
                by_id(&at["parentSpanId"]).unwrap_or_else(|| panic!("{} is outside the request: {span}", span["name"]));
            hops += 1;
            assert!(hops < 10);
        }
    }
    let members = named("Organization.members");
    assert_eq!(
        attribute(&members, "graphql.field.path").as_deref(),
        Some("organization.members")
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"].as_str().is_some_and(|n| n.starts_with("load "))),
        "no batched load among {:?}",
        spans.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()
    );
    let (resource, _) = received
        .lock()
        .expect("lock")
        .iter()
        .find(|(_, s)| s["traceId"] == CALLER_TRACE)
        .cloned()
        .expect("resource");
    assert_eq!(attribute(&resource, "service.name").as_deref(), Some("guildhall"));

    // A mutation without a caller's trace starts one, with its write transaction in it; a
    // malformed traceparent is ignored rather than refused.
    let (id, body) = ask(
        "mutation Create($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { slug } } }",
        json!({ "i": { "organizationId": organization, "name": "Traced", "slug": "traced" } }),
        vec![("traceparent", "00-not-a-trace-01".to_owned())],
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let id = id.expect("request id");
    let (request, transaction) = until(&received, "the mutation's spans", |all| {
        let request = all
            .iter()
            .map(|(_, s)| s)
            .find(|s| attribute(s, "request_id").as_deref() == Some(id.as_str()))?;
        let transaction = all
            .iter()
            .map(|(_, s)| s)
            .find(|s| s["traceId"] == request["traceId"] && s["name"] == "write transaction")?;
        Some((request.clone(), transaction.clone()))
    })
    .await;
    assert_ne!(request["traceId"], CALLER_TRACE);
    assert!(request["parentSpanId"].as_str().is_none_or(str::is_empty), "{request}");
    assert_eq!(
        attribute(&transaction, "outcome").as_deref(),
        Some("committed"),
        "{transaction}"
    );
    assert!(
        received
            .lock()
            .expect("lock")
            .iter()
            .any(|(_, s)| s["traceId"] == request["traceId"] && s["name"] == "Mutation.createWorkspace")
    );

    // A path nobody serves is named for what it is, not for its text.
    let missing = server
        .client
        .get(format!("{}/no/such/page", server.url))
        .header("x-request-id", "traced-404")
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    let unrouted = until(&received, "the 404's span", |all| {
        all.iter()
            .map(|(_, s)| s)
            .find(|s| attribute(s, "request_id").as_deref() == Some("traced-404"))
            .cloned()
    })
    .await;
    assert_eq!(unrouted["name"], "GET (unrouted)", "{unrouted}");
    assert_no_secrets(
        &received,
        &[
            owner.access_token.as_str(),
            crate::helpers::PASSWORD,
            "owner@example.com",
            "Traced",
        ],
    );
}

/// No span carries a credential, a password, an email or a variable's value.
fn assert_no_secrets(received: &Received, secrets: &[&str]) {
    for (_, span) in received.lock().expect("lock").iter() {
        let text = span.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {span}");
        }
    }
}

/// Traces are off by default, and an endpoint that is not plain HTTP is refused at start.
#[tokio::test]
async fn an_otlp_endpoint_must_be_plain_http() {
    let database_url = fresh_database_url().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .args(["serve", "--database-url", &database_url, "--metrics-bind", "off"])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--otlp-endpoint",
            "https://collector.example:4318",
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plain http://"), "{stderr}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .args(["serve", "--database-url", &database_url, "--metrics-bind", "off"])
        .args(["--bind", "127.0.0.1:0", "--otlp-endpoint", "http://127.0.0.1:4318"])
        .args(["--otlp-protocol", "grpc"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http/protobuf or http/json"), "{stderr}");
}
