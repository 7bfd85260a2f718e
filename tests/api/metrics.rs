//! `/metrics` on the operators' listener: what happened is counted under the names and labels
//! the README documents, and the public listener does not serve it.
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// The value of one series (the whole text before the value, labels included), if present.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().expect("a number"))
    })
}

fn must(text: &str, name: &str) -> f64 {
    series(text, name).unwrap_or_else(|| panic!("no series {name} in\n{text}"))
}

async fn named_query(app: &TestApp, token: &str, times: usize) {
    for _ in 0..times {
        let body = app.gql(Some(token), "query Me { viewer { name } }", json!({})).await;
        assert_eq!(body["data"]["viewer"]["name"], "Ada", "{body}");
    }
}

#[tokio::test]
async fn operations_decisions_statements_caches_and_the_outbox_are_counted() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let organization = app.create_organization(&ada, "acme").await;
    app.add_member(&organization, &bob).await;

    let before = app.scrape().await;
    assert_eq!(
        series(
            &before,
            "guildhall_graphql_operations_total{operation=\"Me\",kind=\"query\",outcome=\"ok\"}"
        ),
        None,
        "nothing named Me ran yet"
    );

    named_query(&app, &ada.access_token, 3).await;
    // A member without audit.read: the guarded field answers FORBIDDEN, the decision is denied.
    let body = app
        .gql(
            Some(&bob.access_token),
            "query Audit { organization(slug: \"acme\") { name auditLog { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&body), "FORBIDDEN", "{body}");
    // A syntax error and a request without a credential that works.
    let (status, _, _) = app.gql_response(None, "query Broken {", json!({})).await;
    assert_eq!(status, 200);
    let unauthenticated = app
        .client
        .post(app.graphql_url())
        .bearer_auth("not-a-token")
        .json(&json!({ "query": "{ viewer { name } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
    // An invitation queues one mail (no SMTP configured: it stays pending).
    let invited = app
        .gql(
            Some(&ada.access_token),
            "mutation Invite($input: InviteMemberInput!) { inviteMember(input: $input) { acceptUrl } }",
            json!({ "input": { "organizationId": organization, "email": "cy@example.com" } }),
        )
        .await;
    assert!(invited["data"]["inviteMember"]["acceptUrl"].is_string(), "{invited}");

    let text = app.scrape().await;
    assert_eq!(
        must(
            &text,
            "guildhall_graphql_operations_total{operation=\"Me\",kind=\"query\",outcome=\"ok\"}"
        ),
        3.0
    );
    assert_eq!(
        must(
            &text,
            "guildhall_graphql_operation_duration_seconds_count{operation=\"Me\",kind=\"query\"}"
        ),
        3.0
    );
    assert_eq!(
        must(
            &text,
            "guildhall_graphql_operations_total{operation=\"Audit\",kind=\"query\",outcome=\"FORBIDDEN\"}"
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "guildhall_graphql_operations_total{operation=\"Invite\",kind=\"mutation\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert!(
        must(
            &text,
            "guildhall_graphql_operations_total{operation=\"anonymous\",kind=\"none\",outcome=\"BAD_USER_INPUT\"}"
        ) >= 1.0,
        "the syntax error"
    );
    assert_eq!(
        must(
            &text,
            "guildhall_graphql_operations_total{operation=\"anonymous\",kind=\"none\",outcome=\"UNAUTHENTICATED\"}"
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            "guildhall_authz_decisions_total{key=\"audit.read\",decision=\"denied\"}"
        ),
        1.0
    );
    assert!(
        must(
            &text,
            "guildhall_authz_decisions_total{key=\"members.invite\",decision=\"allowed\"}"
        ) >= 1.0
    );
    // Statements: counted in all, and per request (every request above ran at least one).
    let statements = must(&text, "guildhall_db_statements_total");
    assert!(statements >= 10.0, "{statements}");
    let requests = must(&text, "guildhall_db_statements_per_request_count");
    assert!(requests >= 6.0, "{requests}");
    assert!(must(&text, "guildhall_db_statements_per_request_sum") >= requests);
    assert_eq!(must(&text, "guildhall_db_pool_max_connections"), 8.0);
    assert!(must(&text, "guildhall_db_pool_connections{state=\"idle\"}") >= 0.0);
    assert_eq!(must(&text, "guildhall_db_pool_acquire_timeouts_total"), 0.0);
    assert_eq!(must(&text, "guildhall_mail_outbox_messages{state=\"pending\"}"), 1.0);
    assert_eq!(must(&text, "guildhall_mail_outbox_messages{state=\"failed\"}"), 0.0);
    assert!(must(&text, "guildhall_change_clock_reads_total{outcome=\"ok\"}") >= 6.0);
    assert!(must(&text, "guildhall_cache_invalidations_total") >= 1.0);
    assert_eq!(must(&text, "guildhall_subscriptions_active"), 0.0);
    assert!(text.contains("guildhall_build_info{version=\""), "{text}");
    assert!(text.ends_with("# EOF\n"));

    // With nothing written in between, the second of two identical reads is served by the
    // callers' standing cache: hits go up, and no write moved the clock.
    let hits = |text: &str| must(text, "guildhall_cache_hits_total{cache=\"sessions\"}");
    let invalidations = must(&text, "guildhall_cache_invalidations_total");
    named_query(&app, &ada.access_token, 2).await;
    let after = app.scrape().await;
    assert!(hits(&after) >= hits(&text) + 1.0, "{after}");
    assert_eq!(must(&after, "guildhall_cache_invalidations_total"), invalidations);

    // The public listener does not serve metrics.
    let public = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
    app.stop().await;
}
