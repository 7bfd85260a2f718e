//! Transport and error conventions: JSON-only POSTs, codes, request ids.
use serde_json::json;

use crate::helpers::{error_code, spawn_app};

const CREATE: &str =
    r#"mutation { createOrganization(input: { name: "Sneaky", slug: "sneaky" }) { organization { id } } }"#;

#[tokio::test]
async fn mutations_by_get_text_plain_or_form_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let body = json!({ "query": CREATE }).to_string();
    let url = app.graphql_url();

    let get = app
        .client
        .get(&url)
        .query(&[("query", CREATE)])
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .expect("get");
    assert_eq!(get.status().as_u16(), 405);

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = app.client.post(&url).bearer_auth(&ada.access_token).body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status().as_u16(), 415, "{content_type:?}");
        let payload: serde_json::Value = response.json().await.expect("json");
        assert_eq!(error_code(&payload), "BAD_USER_INPUT");
    }
    assert_eq!(app.count_rows("organizations").await, 0);

    // The same mutation as JSON works, so the refusals above are about transport only.
    let ok = app.gql(Some(&ada.access_token), CREATE, json!({})).await;
    assert!(
        ok["data"]["createOrganization"]["organization"]["id"].is_string(),
        "{ok}"
    );
    assert_eq!(app.count_rows("organizations").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_deep_queries_are_refused() {
    let app = spawn_app().await;
    let huge = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(1_100_000)) });
    let response = app
        .client
        .post(app.graphql_url())
        .json(&huge)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 413);

    let ada = app.sign_up("ada@example.com", "Ada").await;
    let mut deep = "slug".to_owned();
    for _ in 0..7 {
        deep = format!("viewerMembership {{ organization {{ {deep} }} }}");
    }
    let body = app
        .gql(
            Some(&ada.access_token),
            &format!("{{ organization(slug: \"x\") {{ {deep} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["data"].is_null());
    app.stop().await;
}

#[tokio::test]
async fn internal_errors_carry_a_request_id_and_no_sql() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    app.create_organization(&ada, "acme").await;
    // Break the database under the running server.
    let store = app.store().await;
    sea_orm::ConnectionTrait::execute_unprepared(&store.conn, "ALTER TABLE organizations RENAME TO organizations_gone")
        .await
        .expect("rename");
    store.close().await;

    let (status, body, request_id) = app
        .gql_response(
            Some(&ada.access_token),
            "{ viewer { organizations { edges { node { slug } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    let error = &body["errors"][0];
    assert!(!request_id.is_empty());
    assert_eq!(error["extensions"]["requestId"], request_id.as_str());
    let text = error.to_string().to_lowercase();
    for leak in [
        "select",
        "organizations_gone",
        "from",
        "relation",
        "no such table",
        "sqlite",
        "postgres",
        "database",
    ] {
        assert!(!text.contains(leak), "error leaks `{leak}`: {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_error_has_a_code_and_request_id() {
    let app = spawn_app().await;
    let (status, body, request_id) = app.gql_response(None, "{ nonsense }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], request_id.as_str());
    let malformed = app
        .client
        .post(app.graphql_url())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(malformed.status().as_u16(), 400);
    app.stop().await;
}

#[tokio::test]
async fn health_and_readiness_and_graphiql_answer() {
    let app = spawn_app().await;
    for (path, needle) in [("/healthz", "ok"), ("/readyz", "ready"), ("/graphiql", "graphiql")] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let text = response.text().await.expect("text").to_lowercase();
        assert!(text.contains(needle), "{path}: {text}");
    }
    app.stop().await;
}

/// GraphiQL is served whole by the binary: the page names only files of this origin, each of them
/// is served, and nothing runs inline (the page works under `default-src 'self'`).
#[tokio::test]
async fn graphiql_is_served_whole_from_this_origin_under_a_strict_policy() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/graphiql", app.address))
        .send()
        .await
        .expect("page");
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    let html = page.text().await.expect("html");
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    let mut referenced = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (index, _) in html.match_indices(attribute) {
            let rest = &html[index + attribute.len()..];
            referenced.push(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    assert!(referenced.len() >= 5, "{referenced:?}");
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=").count(),
        "no inline script: {html}"
    );
    for path in referenced {
        assert!(path.starts_with("/graphiql/"), "{path}");
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.bytes().await.expect("body").len() > 10, "{path}");
    }
    let missing = app
        .client
        .get(format!("{}/graphiql/../Cargo.toml", app.address))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status().as_u16(), 404);
    app.stop().await;
}
