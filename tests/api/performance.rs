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

/// Statements of one request; `cold` first makes the server forget every caller's standing.
async fn statements(app: &TestApp, owner: &TestUser, query: &str, variables: Value, cold: bool) -> (u64, Value) {
    if cold {
        app.app.store.writes.tick();
    }
    let before = app.app.store.statement_count();
    let body = app.gql(Some(&owner.access_token), query, variables).await;
    assert!(body["errors"].is_null(), "{body}");
    (app.app.store.statement_count() - before, body)
}

/// A server of its own, whose statement counter no other test moves.
async fn spawn_counting() -> TestApp {
    crate::helpers::spawn_with(crate::helpers::test_args(&crate::helpers::fresh_database_url().await)).await
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
    let (small_page, body) = statements(&small, &small_owner, PAGE, vars.clone(), true).await;
    assert_eq!(body["data"]["organization"]["members"]["totalCount"], 2);
    let (large_page, body) = statements(&large, &large_owner, PAGE, vars.clone(), true).await;
    assert_eq!(body["data"]["organization"]["members"]["totalCount"], 50);
    assert_eq!(
        body["data"]["organization"]["members"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        50
    );
    let (small_dash, _) = statements(&small, &small_owner, DASHBOARD, json!({}), true).await;
    let (large_dash, body) = statements(&large, &large_owner, DASHBOARD, json!({}), true).await;
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
    for (name, query, variables) in [("page", PAGE, vars.clone()), ("dashboard", DASHBOARD, json!({}))] {
        let (_, body) = statements(&large, &large_owner, query, variables, false).await;
        let cost = &body["extensions"]["cost"];
        println!("cost: {name} {} of {}", cost["requested"], cost["limit"]);
        assert!(cost["requested"].as_u64().expect("cost") <= cost["limit"].as_u64().expect("limit"));
    }
    assert_eq!(small_page, large_page, "page workload");
    assert_eq!(small_dash, large_dash, "dashboard workload");
    assert!(large_page <= 12, "page workload issues {large_page} statements");
    assert!(large_dash <= 12, "dashboard workload issues {large_dash} statements");

    // Asked again while nothing changed: the caller's standing and every loaded row are reused,
    // so nothing is read again but the database's change clock (the freshness check).
    for (app, owner) in [(&small, &small_owner), (&large, &large_owner)] {
        for (query, variables) in [(PAGE, vars.clone()), (DASHBOARD, json!({}))] {
            let (_, first) = statements(app, owner, query, variables.clone(), false).await;
            let (repeated, again) = statements(app, owner, query, variables, false).await;
            assert_eq!(repeated, FRESHNESS_CHECK, "repeated {query}");
            assert_eq!(again, first);
        }
    }
    // After a write, the next request reads afresh and sees it.
    let org_id = large
        .gql(
            Some(&large_owner.access_token),
            "{ organization(slug: \"org-00\") { id } }",
            json!({}),
        )
        .await["data"]["organization"]["id"]
        .clone();
    let renamed = large
        .gql(
            Some(&large_owner.access_token),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }",
            json!({ "i": { "organizationId": org_id, "name": "Renamed" } }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    let (after_write, body) = statements(&large, &large_owner, PAGE, vars.clone(), false).await;
    assert!(after_write > 0);
    assert_eq!(
        body["data"]["viewer"]["organizations"]["edges"][0]["node"]["name"],
        "Renamed"
    );
    small.stop().await;
    large.stop().await;
}

const AUTHORIZE: &str = "query($o: ID!) { authorize(organizationId: $o, key: \"members.invite\") { allowed reason } }";

/// Statements every request issues before trusting anything kept: one read of the database's
/// change clock.
const FRESHNESS_CHECK: u64 = 1;

async fn allowed(app: &TestApp, user: &TestUser, organization: &str) -> bool {
    let body = app
        .gql(Some(&user.access_token), AUTHORIZE, json!({ "o": organization }))
        .await;
    body["data"]["authorize"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("authorize failed: {body}"))
}

/// Asks `authorize` twice and returns the answer, asserting that the second time only the
/// freshness check ran: an unchanged caller is answered from memory.
async fn answered_from_memory(app: &TestApp, user: &TestUser, organization: &str) -> bool {
    let first = allowed(app, user, organization).await;
    let before = app.app.store.statement_count();
    let answer = allowed(app, user, organization).await;
    assert_eq!(app.app.store.statement_count() - before, FRESHNESS_CHECK);
    assert_eq!(answer, first);
    answer
}

#[tokio::test]
async fn a_callers_standing_is_reused_until_anything_is_written() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let member = app.sign_up("member@example.com", "Member").await;
    let org = app.create_organization(&owner, "acme").await;
    let membership = app.add_member(&org, &member).await;

    assert!(!answered_from_memory(&app, &member, &org).await);

    // Every change shows on the very next request.
    let admin = crate::helpers::builtin_role("admin");
    assert!(app.change_role(&owner, true, &membership, &admin, None).await["errors"].is_null());
    assert!(allowed(&app, &member, &org).await, "a granted role counts at once");
    assert!(app.change_role(&owner, false, &membership, &admin, None).await["errors"].is_null());
    assert!(
        !allowed(&app, &member, &org).await,
        "a revoked role stops counting at once"
    );

    // Logging out ends the session on the next request too.
    let body = app
        .gql(
            Some(&member.access_token),
            "mutation { logOut(input: {}) { endedSessions } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(Some(&member.access_token), AUTHORIZE, json!({ "o": org }))
        .await;
    assert_eq!(crate::helpers::error_code(&body), "UNAUTHENTICATED");
}

async fn organization_as(app: &TestApp, user: &TestUser, query: &str) -> Value {
    app.gql(Some(&user.access_token), query, json!({})).await["data"]["organization"].clone()
}

/// Two servers on one database (PostgreSQL, or one SQLite file): a change committed through one
/// is enforced by the other on its very next request, with nothing to wait for.
#[tokio::test]
async fn a_change_through_one_server_reaches_another_servers_cache() {
    let first = crate::helpers::spawn_app().await;
    let second = crate::helpers::spawn_with(crate::helpers::test_args(&first.database_url)).await;
    let owner = first.sign_up("owner@example.com", "Owner").await;
    let member = first.sign_up("member@example.com", "Member").await;
    let org = first.create_organization(&owner, "acme").await;
    let membership = first.add_member(&org, &member).await;
    let admin = crate::helpers::builtin_role("admin");
    assert!(first.change_role(&owner, true, &membership, &admin, None).await["errors"].is_null());

    assert!(answered_from_memory(&second, &member, &org).await);

    assert!(first.change_role(&owner, false, &membership, &admin, None).await["errors"].is_null());
    assert!(
        !allowed(&second, &member, &org).await,
        "the revocation holds on the other server's next request"
    );

    // Rows the second server shares between requests (organizations, member lists) follow too.
    let list = "{ organization(slug: \"acme\") { name members(first: 10) { nodes { user { name } roleBindings { role { name } } } } } }";
    let before = organization_as(&second, &owner, list).await;
    assert_eq!(before["name"], "Org acme");
    assert_eq!(organization_as(&second, &owner, list).await, before);
    let renamed = first
        .gql(
            Some(&owner.access_token),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }",
            json!({ "i": { "organizationId": org, "name": "Acme Renamed" } }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    // Each change on its own, so that each table's trigger is what carries it.
    let seen = organization_as(&second, &owner, list).await;
    assert_eq!(seen["name"], "Acme Renamed", "{seen}");
    let viewer = crate::helpers::builtin_role("viewer");
    assert!(first.change_role(&owner, true, &membership, &viewer, None).await["errors"].is_null());
    let seen = organization_as(&second, &owner, list).await;
    assert_eq!(
        seen["members"]["nodes"][1]["roleBindings"][0]["role"]["name"], "viewer",
        "{seen}"
    );
}

/// Per-row fields of definitions (direct keys, effective keys, holder counts, keychains' keys)
/// are batched: listing an organization's roles costs the same statements for 2 custom roles as
/// for 10.
#[tokio::test]
async fn role_lists_cost_the_same_statements_at_any_length() {
    const ROLES: &str = "{ organization(slug: \"acme\") { roles { name keys effectiveKeys holderCount
        keychains { name keys } } keychains { name keys roles { name } } } }";
    let mut counts = Vec::new();
    for custom in [2, 10] {
        let app = spawn_counting().await;
        let owner = app.sign_up("owner@example.com", "Owner").await;
        let org = app.create_organization(&owner, "acme").await;
        for i in 0..custom {
            let chain = app
                .gql(
                    Some(&owner.access_token),
                    "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
                    json!({ "i": { "organizationId": org, "name": format!("chain-{i}"), "keys": ["servers.read"] } }),
                )
                .await["data"]["createKeychain"]["keychain"]["id"]
                .as_str()
                .expect("keychain")
                .to_owned();
            let body = app
                .gql(
                    Some(&owner.access_token),
                    "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
                    json!({ "i": { "organizationId": org, "name": format!("role-{i}"), "keys": ["members.read"], "keychainIds": [chain] } }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
        let (n, body) = statements(&app, &owner, ROLES, json!({}), true).await;
        assert_eq!(
            body["data"]["organization"]["roles"].as_array().expect("roles").len(),
            8 + custom
        );
        counts.push(n);
        app.stop().await;
    }
    println!(
        "statements for a role list: 2 custom roles {}, 10 custom roles {}",
        counts[0], counts[1]
    );
    assert_eq!(counts[0], counts[1]);
}
