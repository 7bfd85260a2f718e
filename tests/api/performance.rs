//! Statement counts per request stay constant however large the organizations grow.
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_keychain, bulk_members_with_role, raw_id};

pub const PAGE: &str = "query($slug: String!) {
  viewer { organizations(first: 20) { totalCount edges { node { id slug name } } } }
  organization(slug: $slug) { viewerKeys members(first: 50) { totalCount edges { node { id joinedAt
    user { id name email }
    roleBindings { grantedAt workspace { id } role { id name keychains { id name } } } } } } } }";

pub const DASHBOARD: &str = "{ viewer { organizations(first: 20) { edges { node { slug viewerMembership { id }
  members(first: 50) { totalCount edges { node { user { name email }
    roleBindings { role { name keychains { name } } } } } } } } } } }";

/// Builds `orgs` organizations of `members` members each (the viewer owns them all); half the
/// members hold a custom role made of a custom and a built-in keychain, half hold `viewer`.
async fn build(app: &TestApp, owner: &TestUser, orgs: usize, members: usize) {
    for o in 0..orgs {
        let org = app.create_organization(owner, &format!("org-{o:02}")).await;
        let chain = app
            .gql(
                Some(&owner.access_token),
                "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
                json!({ "i": { "organizationId": org, "name": "ops", "keys": ["servers.read"] } }),
            )
            .await["data"]["createKeychain"]["keychain"]["id"]
            .as_str()
            .expect("keychain")
            .to_owned();
        let role = app
            .gql(
                Some(&owner.access_token),
                "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
                json!({ "i": { "organizationId": org, "name": "operator", "keychainIds": [chain, builtin_keychain("member_basics")] } }),
            )
            .await["data"]["createRole"]["role"]["id"]
            .as_str()
            .expect("role")
            .to_owned();
        let others = members - 1;
        bulk_members_with_role(app, &org, others - others / 2, Some(raw_id(&role))).await;
        bulk_members_with_role(
            app,
            &org,
            others / 2,
            Some(guildhall::domain::builtins::role_id("viewer")),
        )
        .await;
    }
}

async fn statements(app: &TestApp, owner: &TestUser, query: &str, variables: Value) -> (u64, Value) {
    let before = app.app.store.statement_count();
    let body = app.gql(Some(&owner.access_token), query, variables).await;
    assert!(body["errors"].is_null(), "{body}");
    (app.app.store.statement_count() - before, body)
}

/// A server whose loaders wait long enough for every key of a response level, even in a debug
/// build on a loaded machine: the assertion is about how statements are batched, not timing.
async fn spawn_counting() -> TestApp {
    let mut args = crate::helpers::test_args(&crate::helpers::fresh_database_url().await);
    args.loader_batch_window_us = 25_000;
    crate::helpers::spawn_with(args).await
}

#[tokio::test]
async fn settings_workloads_issue_the_same_few_statements_at_any_size() {
    let small = spawn_counting().await;
    let small_owner = small.sign_up("owner@example.com", "Owner").await;
    build(&small, &small_owner, 1, 2).await;
    let large = spawn_counting().await;
    let large_owner = large.sign_up("owner@example.com", "Owner").await;
    build(&large, &large_owner, 20, 50).await;

    let vars = json!({ "slug": "org-00" });
    let (small_page, body) = statements(&small, &small_owner, PAGE, vars.clone()).await;
    assert_eq!(body["data"]["organization"]["members"]["totalCount"], 2);
    let (large_page, body) = statements(&large, &large_owner, PAGE, vars).await;
    assert_eq!(body["data"]["organization"]["members"]["totalCount"], 50);
    assert_eq!(
        body["data"]["organization"]["members"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        50
    );
    let (small_dash, _) = statements(&small, &small_owner, DASHBOARD, json!({})).await;
    let (large_dash, body) = statements(&large, &large_owner, DASHBOARD, json!({})).await;
    let orgs = body["data"]["viewer"]["organizations"]["edges"]
        .as_array()
        .expect("orgs");
    assert_eq!(orgs.len(), 20);
    let members: usize = orgs
        .iter()
        .map(|o| o["node"]["members"]["edges"].as_array().expect("members").len())
        .sum();
    assert_eq!(members, 1000);
    let keychains = &orgs[3]["node"]["members"]["edges"][1]["node"]["roleBindings"][0]["role"]["keychains"];
    assert_eq!(keychains.as_array().expect("keychains").len(), 2, "{keychains}");

    println!("statements: page {small_page} / {large_page}, dashboard {small_dash} / {large_dash}");
    assert_eq!(small_page, large_page, "page workload");
    assert_eq!(small_dash, large_dash, "dashboard workload");
    assert!(large_page <= 12, "page workload issues {large_page} statements");
    assert!(large_dash <= 12, "dashboard workload issues {large_dash} statements");
    small.stop().await;
    large.stop().await;
}
