//! Member lists built straight into response values answer as the generic, field-by-field
//! resolution does, with keys in the order they were asked for, and only selections of plain
//! fields take that way.
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, builtin_keychain, builtin_role, bulk_members_with_role, fresh_database_url, raw_id, spawn_with, test_args,
};

/// The raw response body.
async fn body(app: &TestApp, token: &str, query: &str, variables: &Value) -> String {
    app.client
        .post(app.graphql_url())
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body")
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).expect("a JSON body")
}

const EVERYTHING: &str = "query($slug: String!, $after: String) { organization(slug: $slug) {
  first: members(first: 4) { __typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node { ...Member } } }
  rest: members(first: 50, after: $after) { totalCount nodes { id ... on Node { id } unassigned joinedAt } } } }
  fragment Member on Membership { __typename id joinedAt unassigned
    person: user { __typename id name email kind createdAt }
    roleBindings { __typename grantedAt grantedBy { id name email kind } workspace { __typename id slug name description createdAt }
      role { __typename id name description kind scope minHolders maxHolders
        keychains { __typename id name description kind } } } }";

/// Selections the direct way leaves to the generic resolution, each for its own reason.
const GENERIC_ONLY: [&str; 5] = [
    // a field computed from the catalog
    "query($slug: String!) { organization(slug: $slug) { members(first: 5) { nodes { roleBindings { role { effectiveKeys } } } } } }",
    // a field with its own permission check
    "query($slug: String!) { organization(slug: $slug) { members(first: 5) { edges { node { id effectiveKeys } } } } }",
    // one key selected twice with different sub-selections
    "query($slug: String!) { organization(slug: $slug) { members(first: 5) { nodes { user { name } user { email } } } } }",
    // a field with its own statement
    "query($slug: String!) { organization(slug: $slug) { members(first: 5) { nodes { roleBindings { role { name holderCount } } } } } }",
    // a field reaching back to the organization
    "query($slug: String!) { organization(slug: $slug) { members(first: 5) { nodes { organization { slug } } } } }",
];

#[tokio::test]
async fn direct_member_lists_answer_exactly_as_the_generic_resolution() {
    let url = fresh_database_url().await;
    let direct = spawn_with(test_args(&url)).await;
    let mut args = test_args(&url);
    args.generic_member_lists = true;
    let generic = spawn_with(args).await;

    let owner = direct.sign_up("owner@example.com", "Owner").await;
    let token = owner.access_token.clone();
    let org = direct.create_organization(&owner, "acme").await;
    let workspace = direct.create_workspace(&owner, &org, "ops").await;
    let chain = direct
        .gql(
            Some(&token),
            "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
            json!({ "i": { "organizationId": org, "name": "ops", "description": "Servers", "keys": ["servers.read"] } }),
        )
        .await["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    let role = direct
        .gql(
            Some(&token),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": org, "name": "operator", "description": "Runs things",
                           "keychainIds": [chain, builtin_keychain("member_basics")] } }),
        )
        .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    // A member with a custom role and a built-in one inside a workspace, an unassigned member,
    // a service account (no email) and a few bulk members.
    let alice = direct.sign_up("alice@example.com", "Alice").await;
    let alice_membership = direct.add_member(&org, &alice).await;
    for (role, workspace) in [
        (role.as_str(), None),
        (builtin_role("workspace_viewer").as_str(), Some(workspace.as_str())),
    ] {
        let changed = direct
            .change_role(&owner, true, &alice_membership, role, workspace)
            .await;
        assert!(changed["errors"].is_null(), "{changed}");
    }
    let bob = direct.sign_up("bob@example.com", "Bob").await;
    direct.add_member(&org, &bob).await;
    let service = direct
        .gql(
            Some(&token),
            "mutation($i: CreateServiceAccountInput!) { createServiceAccount(input: $i) { membership { id } } }",
            json!({ "i": { "organizationId": org, "name": "deploy-bot" } }),
        )
        .await;
    assert!(service["errors"].is_null(), "{service}");
    bulk_members_with_role(&direct, &org, 6, Some(raw_id(&builtin_role("viewer")))).await;

    let first_page = direct
        .gql(Some(&token), EVERYTHING, json!({ "slug": "acme", "after": null }))
        .await;
    let after = first_page["data"]["organization"]["first"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let cases: Vec<(&str, Value)> = vec![
        (EVERYTHING, json!({ "slug": "acme", "after": null })),
        (EVERYTHING, json!({ "slug": "acme", "after": after })),
        (crate::performance::PAGE, json!({ "slug": "acme" })),
        (crate::performance::DASHBOARD, json!({})),
        // @skip and @include are applied before execution.
        (
            "query($slug: String!, $yes: Boolean!) { organization(slug: $slug) { members(first: 5) { edges { node { id user @include(if: $yes) { name } roleBindings @skip(if: $yes) { grantedAt } } } } } }",
            json!({ "slug": "acme", "yes": true }),
        ),
        (
            "query($slug: String!, $yes: Boolean!) { organization(slug: $slug) { members(first: 5) { edges { node { id user @include(if: $yes) { name } roleBindings @skip(if: $yes) { grantedAt } } } } } }",
            json!({ "slug": "acme", "yes": false }),
        ),
        (
            "query($slug: String!) { organization(slug: $slug) { members(first: 20, filter: { unassigned: true }) { totalCount nodes { id id user { name } } } } }",
            json!({ "slug": "acme" }),
        ),
        (
            "query($slug: String!, $q: String) { organization(slug: $slug) { members(first: 20, filter: { query: $q }) { totalCount edges { node { user { email } } } } } }",
            json!({ "slug": "acme", "q": "ALI" }),
        ),
    ];
    for (query, variables) in &cases {
        let before = direct.app.direct_member_lists.load(Ordering::Relaxed);
        let expected = body(&generic, &token, query, variables).await;
        let answered = body(&direct, &token, query, variables).await;
        assert!(
            expected.contains("\"data\"") && !expected.contains("\"errors\""),
            "{expected}"
        );
        assert_eq!(parsed(&answered), parsed(&expected), "for {query}");
        assert!(
            direct.app.direct_member_lists.load(Ordering::Relaxed) > before,
            "built directly: {query}"
        );
        assert_eq!(generic.app.direct_member_lists.load(Ordering::Relaxed), 0);
    }
    // Keys come in the order they were asked for (async-graphql's generic resolution lists them
    // in the order their values were ready).
    let raw = body(&direct, &token, EVERYTHING, &cases[0].1).await;
    for in_order in [
        r#"{"__typename":"MembershipConnection","totalCount":10,"pageInfo":{"__typename":"PageInfo","hasNextPage":true,"#,
        r#""roleBindings":[{"__typename":"RoleBinding","grantedAt":"#,
        r#"{"id":"#,
    ] {
        assert!(raw.contains(in_order), "{in_order} in {raw}");
    }
    assert!(raw.contains(r#""unassigned":false,"joinedAt":"#), "{raw}");
    // Spot checks of what was compared.
    let everything = parsed(&raw);
    let first = &everything["data"]["organization"]["first"];
    assert_eq!(first["totalCount"], 10);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let alice_node = &first["edges"][1]["node"];
    assert_eq!(alice_node["person"]["name"], "Alice");
    assert_eq!(
        alice_node["roleBindings"][0]["role"]["keychains"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(alice_node["roleBindings"][1]["workspace"]["slug"], "ops");
    assert_eq!(first["edges"][2]["node"]["unassigned"], true);
    assert_eq!(first["edges"][3]["node"]["person"]["email"], Value::Null);

    for query in GENERIC_ONLY {
        let variables = json!({ "slug": "acme" });
        let before = direct.app.direct_member_lists.load(Ordering::Relaxed);
        let expected = body(&generic, &token, query, &variables).await;
        let answered = body(&direct, &token, query, &variables).await;
        assert!(!expected.contains("\"errors\""), "{expected}");
        assert_eq!(parsed(&answered), parsed(&expected), "for {query}");
        assert_eq!(
            direct.app.direct_member_lists.load(Ordering::Relaxed),
            before,
            "left to the generic resolution: {query}"
        );
    }
}
