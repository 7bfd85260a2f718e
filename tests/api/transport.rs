//! The HTTP transport as standard clients use it: GET for queries, automatic persisted queries,
//! batches priced as one budget, introspection under the default limits, and bad input answered
//! as the client's mistake in one line.
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{error_code, spawn_app};

const INTROSPECTION: &str = include_str!("fixtures/introspection.graphql");

async fn get(app: &crate::helpers::TestApp, params: &[(&str, &str)], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = app.client.get(app.graphql_url()).query(params);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn post(app: &crate::helpers::TestApp, body: Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.graphql_url())
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("json");
    crate::conformance::check_body(&body, &answer);
    (status, answer)
}

#[tokio::test]
async fn queries_run_over_get_with_a_preflighted_header_and_mutations_never_do() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bearer = format!("Bearer {}", ada.access_token);

    let (status, body) = get(
        &app,
        &[
            (
                "query",
                "query Me($full: Boolean!) { viewer { name @include(if: $full) } }",
            ),
            ("variables", r#"{"full": true}"#),
            ("operationName", "Me"),
        ],
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["name"], "Ada", "{body}");

    let (status, body) = get(
        &app,
        &[("query", "{ __typename }")],
        &[("apollo-require-preflight", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["__typename"].is_string(), "{body}");

    // A plain link or image tag carries none of the preflighted headers.
    let (status, body) = get(&app, &[("query", "{ __typename }")], &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A mutation named among several operations is still a mutation.
    let document = r#"query Q { __typename } mutation M { createOrganization(input: { name: "Via GET", slug: "via-get" }) { organization { id } } }"#;
    let (status, body) = get(
        &app,
        &[("query", document), ("operationName", "M")],
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(app.count_rows("organizations").await, 0);

    let (status, body) = get(
        &app,
        &[("query", "{ __typename }"), ("variables", "{nope")],
        &[("graphql-preflight", "1")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    app.stop().await;
}

#[tokio::test]
async fn persisted_queries_are_asked_for_once_then_run_by_hash_over_post_and_get() {
    let app = spawn_app().await;
    let text = "{ __typename }";
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (status, body) = post(&app, json!({ "extensions": extensions })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    let (_, body) = post(&app, json!({ "query": "{ viewer { id } }", "extensions": extensions })).await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "a text that is not the hash's: {body}"
    );

    let (status, body) = post(&app, json!({ "query": text, "extensions": extensions })).await;
    assert_eq!(status, 200);
    assert!(body["data"]["__typename"].is_string(), "{body}");

    let (status, body) = post(&app, json!({ "extensions": extensions })).await;
    assert_eq!(status, 200);
    assert!(body["data"]["__typename"].is_string(), "known by its hash now: {body}");

    let (status, body) = get(
        &app,
        &[("extensions", &extensions.to_string())],
        &[("apollo-require-preflight", "true")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["__typename"].is_string(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn batches_share_one_cost_budget_instead_of_a_count() {
    let app = spawn_app().await;
    let twelve: Vec<_> = (0..12).map(|_| json!({ "query": "{ __typename }" })).collect();
    let (status, body) = post(&app, json!(twelve)).await;
    assert_eq!(status, 200, "{body}");
    let answers = body.as_array().expect("one answer per operation");
    assert_eq!(answers.len(), 12);
    assert!(answers.iter().all(|a| a["data"]["__typename"].is_string()), "{body}");

    // One bad operation of a batch is answered in its place; the others still run.
    let mixed = json!([{ "query": "{ __typename }" }, { "query": "{ __typename " }, {}]);
    let (status, body) = post(&app, mixed).await;
    assert_eq!(status, 200, "{body}");
    assert!(body[0]["data"]["__typename"].is_string(), "{body}");
    assert_eq!(error_code(&body[1]), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_code(&body[2]), "BAD_USER_INPUT", "{body}");

    let (status, body) = post(&app, json!([])).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    app.stop().await;
}

#[tokio::test]
async fn standard_introspection_runs_under_the_default_limits_and_nesting_it_is_refused() {
    let app = spawn_app().await;
    let (status, body) = post(&app, json!({ "query": INTROSPECTION })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().expect("types");
    assert!(types.len() > 50, "{}", types.len());
    let cost = &body["extensions"]["cost"];
    println!("standard introspection cost: {cost}");
    assert!(
        cost["requested"].as_u64().expect("priced") <= cost["limit"].as_u64().expect("limit"),
        "{cost}"
    );

    // Introspection is exempt from depth, not from cost: nesting lists that lead back to types
    // three deep is refused before it runs (graphql-js's rule), whatever the depth limit.
    let nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let (_, body) = post(&app, json!({ "query": nested })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["data"].is_null(), "{body}");

    // Ordinary fields still count towards depth.
    let mut deep = "slug".to_owned();
    for _ in 0..7 {
        deep = format!("viewerMembership {{ organization {{ {deep} }} }}");
    }
    let (_, body) = post(
        &app,
        json!({ "query": format!("{{ organization(slug: \"x\") {{ {deep} }} }}") }),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("levels deep"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_the_clients_mistake_in_one_line_with_where() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    app.create_organization(&ada, "acme").await;
    let token = Some(ada.access_token.as_str());
    let tokens_before = app.count_rows("api_tokens").await;

    let cases = [
        (
            r#"mutation { createApiToken(input: { name: "t", expiresAt: "2030-01-01" }) { token } }"#,
            json!({}),
        ),
        (
            "{ organization(slug: \"acme\") { auditLog(filter: { since: \"yesterday\" }) { edges { node { id } } } } }",
            json!({}),
        ),
        (
            "{ organization(slug: \"acme\") { members(first: 3000000000) { edges { node { id } } } } }",
            json!({}),
        ),
        ("{ viewer { name }", json!({})),
        ("query($s: String!) { organization(slug: $s) { id } }", json!({})),
        ("{ viewer { nope } }", json!({})),
    ];
    for (query, variables) in cases {
        let body = app.gql(token, query, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
        let error = &body["errors"][0];
        let message = error["message"].as_str().expect("message");
        assert!(!message.contains('\n'), "one line: {message}");
        assert!(!message.contains("internal"), "{message}");
        assert!(error["locations"][0]["line"].is_number(), "{query}: {body}");
    }
    assert_eq!(app.count_rows("api_tokens").await, tokens_before);

    let (status, body) = post(&app, json!({ "variables": {} })).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("no `query`"),
        "{body}"
    );
    app.stop().await;
}

/// A field the viewer lacks the key for is `null` with its FORBIDDEN error, and the rest of the
/// organization still answers; a failed non-null field nulls its nearest nullable parent.
#[tokio::test]
async fn a_forbidden_field_nulls_only_itself_and_errors_follow_non_null_rules() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let organization = app.create_organization(&ada, "acme").await;
    app.add_member(&organization, &bob).await;
    let body = app
        .gql(
            Some(&bob.access_token),
            "{ organization(slug: \"acme\") { name members(first: 5) { totalCount } auditLog { totalCount } slug } }",
            json!({}),
        )
        .await;
    let org = &body["data"]["organization"];
    assert_eq!(org["name"], "Org acme", "{body}");
    assert!(org["members"].is_null(), "{body}");
    assert!(org["auditLog"].is_null(), "{body}");
    assert_eq!(org["slug"], "acme", "{body}");
    let keys: Vec<&String> = org.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["name", "members", "auditLog", "slug"], "selection order: {body}");
    let mut paths: Vec<String> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| format!("{} {}", e["path"], e["extensions"]["code"]))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            r#"["organization","auditLog"] "FORBIDDEN""#,
            r#"["organization","members"] "FORBIDDEN""#
        ],
        "{body}"
    );

    // `viewer` is non-null: without a credential its error nulls the whole `data`.
    let anonymous = app.gql(None, "{ viewer { name } keyCatalog { id } }", json!({})).await;
    assert!(anonymous["data"].is_null(), "{anonymous}");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    app.stop().await;
}

/// The whole document is priced, whichever operation a request names: validation reads all of
/// it. Mutations are priced per root field wherever fragments put them, and a document asks for
/// the schema a few times at most.
#[tokio::test]
async fn every_operation_and_fragment_of_a_document_is_priced() {
    let app = spawn_app().await;
    let heavy: String = (0..200)
        .map(|i| format!("m{i}: members(first: 100) {{ edges {{ node {{ id }} }} }} "))
        .collect();
    let document = format!("query Cheap {{ __typename }} query Heavy {{ organization(slug: \"x\") {{ {heavy} }} }}");
    let (_, body) = post(&app, json!({ "query": document, "operationName": "Cheap" })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["extensions"]["cost"]["requested"]
            .as_u64()
            .expect("cost")
            > 50_000,
        "{body}"
    );

    let unused = format!("{{ __typename }} fragment Unused on Organization {{ {heavy} }}");
    let (_, body) = post(&app, json!({ "query": unused })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let roots: String = (0..5)
        .map(|i| format!("t{i}: __type(name: \"Query\") {{ name }} "))
        .collect();
    let (_, body) = post(&app, json!({ "query": format!("{{ {roots} }}") })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // Root mutation fields inside fragments cost the same as written out.
    let spelled = "mutation { a: logOut(input: {}) { __typename } b: logOut(input: {}) { __typename } }";
    let hidden = "mutation { ...M ... on Mutation { b: logOut(input: {}) { __typename } } } fragment M on Mutation { a: logOut(input: {}) { __typename } }";
    let cost = |body: &Value| {
        body["extensions"]["cost"]["requested"].as_u64().unwrap_or_else(|| {
            body["errors"][0]["extensions"]["cost"]["requested"]
                .as_u64()
                .expect("cost")
        })
    };
    let (_, a) = post(&app, json!({ "query": spelled })).await;
    let (_, b) = post(&app, json!({ "query": hidden })).await;
    assert!(cost(&a) >= 200 && cost(&b) >= 200, "{a} {b}");
    app.stop().await;
}
