//! `whoCan`: everyone holding a key at a scope, with the grants that explain it, agreeing with
//! `authorize` member by member; guarded by `members.read`; paged; and answered in the same
//! number of statements whatever the organization's size.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_role, bulk_members_with_role, error_code, raw_id, spawn_app};

const WHO_CAN: &str = "query($o: ID!, $k: String!, $w: ID, $first: Int, $after: String) {
  whoCan(organizationId: $o, key: $k, workspaceId: $w, first: $first, after: $after) {
    totalCount
    edges { cursor node {
      membership { id user { email name } }
      grants { key implication role { name } workspace { id } keychain { name } roleBinding { grantedAt } }
    } }
    pageInfo { hasNextPage endCursor }
  } }";

async fn who_can(app: &TestApp, user: &TestUser, org: &str, key: &str, workspace: Option<&str>) -> Value {
    app.gql(
        Some(&user.access_token),
        WHO_CAN,
        json!({ "o": org, "k": key, "w": workspace, "first": 100 }),
    )
    .await
}

/// The names of the holders on a page.
fn names(body: &Value) -> BTreeSet<String> {
    body["data"]["whoCan"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no page: {body}"))
        .iter()
        .map(|e| {
            e["node"]["membership"]["user"]["name"]
                .as_str()
                .expect("name")
                .to_owned()
        })
        .collect()
}

fn holder<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]["whoCan"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["membership"]["user"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not among {body}"))
}

/// The name the world gave the person with this email.
fn person_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let mut chars = local.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

struct World {
    app: TestApp,
    owner: TestUser,
    people: Vec<TestUser>,
    org: String,
    staging: String,
    prod: String,
}

/// An organization with an owner; Ana a viewer; Bob a deployer in staging and Carol in prod
/// (a custom role whose keychain holds `servers.manage`); Dave a plain member; Erin a
/// workspace viewer in staging only; and a service account administering staging.
async fn world() -> World {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let staging = app.create_workspace(&owner, &org, "staging").await;
    let prod = app.create_workspace(&owner, &org, "prod").await;
    let keychain = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
            json!({ "i": { "organizationId": org, "name": "Server ops", "keys": ["servers.manage", "servers.power"] } }),
        )
        .await;
    let keychain = keychain["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{keychain}"))
        .to_owned();
    let role = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": org, "name": "Deployers", "keychainIds": [keychain], "scope": "WORKSPACE" } }),
        )
        .await;
    let deployers = role["data"]["createRole"]["role"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{role}"))
        .to_owned();
    let mut people = Vec::new();
    for (email, name, role, workspace) in [
        ("ana@example.com", "Ana", builtin_role("viewer"), None),
        ("bob@example.com", "Bob", deployers.clone(), Some(&staging)),
        ("carol@example.com", "Carol", deployers.clone(), Some(&prod)),
        ("dave@example.com", "Dave", builtin_role("member"), None),
        (
            "erin@example.com",
            "Erin",
            builtin_role("workspace_viewer"),
            Some(&staging),
        ),
    ] {
        let user = app.sign_up(email, name).await;
        let membership = app.add_member(&org, &user).await;
        let body = app
            .change_role(&owner, true, &membership, &role, workspace.map(String::as_str))
            .await;
        assert!(body["errors"].is_null(), "{body}");
        people.push(user);
    }
    let account = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateServiceAccountInput!) { createServiceAccount(input: $i) { membership { id } } }",
            json!({ "i": { "organizationId": org, "name": "CI",
                "roleBindings": [{ "roleId": builtin_role("workspace_admin"), "workspaceId": staging }] } }),
        )
        .await;
    assert!(account["errors"].is_null(), "{account}");
    World {
        app,
        owner,
        people,
        org,
        staging,
        prod,
    }
}

#[tokio::test]
async fn who_can_names_every_holder_with_its_grants_and_agrees_with_authorize() {
    let w = world().await;
    let (app, owner) = (&w.app, &w.owner);

    // Organization-wide, `ssh_keys.read` comes with owner and viewer only.
    let wide = who_can(app, owner, &w.org, "ssh_keys.read", None).await;
    assert!(wide["errors"].is_null(), "{wide}");
    assert_eq!(names(&wide), BTreeSet::from(["Owner".to_owned(), "Ana".to_owned()]));
    assert_eq!(wide["data"]["whoCan"]["totalCount"], 2);
    let ana = holder(&wide, "Ana");
    assert_eq!(ana["grants"][0]["role"]["name"], "viewer", "{ana}");
    assert_eq!(ana["grants"][0]["keychain"]["name"], "read_only", "{ana}");
    assert_eq!(ana["grants"][0]["implication"], json!(["ssh_keys.read"]), "{ana}");
    assert!(ana["grants"][0]["workspace"].is_null());

    // In staging, also Bob through his deployer keychain (servers.manage implies
    // ssh_keys.manage implies ssh_keys.read), Erin and the service account; not Carol (prod).
    let staging = who_can(app, owner, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    assert_eq!(staging["data"]["whoCan"]["totalCount"], 5);
    assert_eq!(
        names(&staging),
        ["Owner", "Ana", "Bob", "Erin", "CI"].map(str::to_owned).into(),
    );
    let owner_grant = &holder(&staging, "Owner")["grants"][0];
    assert_eq!(owner_grant["implication"], json!(["ssh_keys.read"]), "{owner_grant}");
    let bob = holder(&staging, "Bob");
    let grant = &bob["grants"][0];
    assert_eq!(grant["role"]["name"], "Deployers");
    assert_eq!(grant["keychain"]["name"], "Server ops");
    assert_eq!(grant["key"], "servers.manage");
    assert_eq!(
        grant["implication"],
        json!(["servers.manage", "ssh_keys.manage", "ssh_keys.read"])
    );
    assert_eq!(grant["workspace"]["id"], w.staging.as_str());
    assert!(grant["roleBinding"]["grantedAt"].is_string(), "{grant}");

    // Member by member, whoCan and authorize say the same, for several keys and scopes.
    for key in [
        "ssh_keys.read",
        "servers.power",
        "members.read",
        "members.invite",
        "workspaces.read",
    ] {
        for scope in [None, Some(w.staging.as_str()), Some(w.prod.as_str())] {
            let answer = who_can(app, owner, &w.org, key, scope).await;
            let holders = names(&answer);
            for person in w.people.iter().chain([owner]) {
                let (allowed, why) = app.authorize(person, &w.org, key, scope).await;
                let name = person_name(&person.email);
                assert_eq!(
                    holders.contains(&name),
                    allowed,
                    "{name} {key} at {scope:?}: whoCan {holders:?}, authorize {why}"
                );
            }
        }
    }

    // Pages of one walk the same holders once each.
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .gql(
                Some(&owner.access_token),
                WHO_CAN,
                json!({ "o": w.org, "k": "ssh_keys.read", "w": w.staging, "first": 1, "after": after }),
            )
            .await;
        let page = &body["data"]["whoCan"];
        walked.extend(names(&body));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(walked.len(), 5);
    assert_eq!(walked.iter().cloned().collect::<BTreeSet<_>>(), names(&staging));
}

#[tokio::test]
async fn who_can_needs_members_read_in_the_organization_and_checks_its_input() {
    let w = world().await;
    let app = &w.app;
    let erin = &w.people[4];
    // A workspace viewer does not hold `members.read` organization-wide.
    let body = who_can(app, erin, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"].is_null(), "{body}");

    // Someone of another organization learns nothing of this one.
    let stranger = app.sign_up("stranger@example.com", "Stranger").await;
    let theirs = app.create_organization(&stranger, "other").await;
    let body = who_can(app, &stranger, &w.org, "ssh_keys.read", None).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let their_workspace = app.create_workspace(&stranger, &theirs, "theirs").await;
    let body = who_can(app, &w.owner, &w.org, "ssh_keys.read", Some(&their_workspace)).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let body = who_can(app, &w.owner, &w.org, "servers.fly", None).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "key", "{body}");
    let body = app
        .gql(
            Some(&w.owner.access_token),
            WHO_CAN,
            json!({ "o": w.org, "k": "ssh_keys.read", "first": 101 }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // A token confined to a keychain without `members.read` is refused too.
    let token = app
        .gql(
            Some(&w.owner.access_token),
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
            json!({ "i": { "name": "servers only", "organizationId": w.org,
                "keychainId": crate::helpers::builtin_keychain("workspace_read_only") } }),
        )
        .await;
    let secret = token["data"]["createApiToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}"))
        .to_owned();
    let body = app
        .gql(Some(&secret), WHO_CAN, json!({ "o": w.org, "k": "ssh_keys.read" }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // A token confined to another organization of the same owner sees nothing of this one,
    // though it reads its own.
    let beta = app.create_organization(&w.owner, "beta").await;
    let token = app
        .gql(
            Some(&w.owner.access_token),
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
            json!({ "i": { "name": "beta reader", "organizationId": beta,
                "keychainId": crate::helpers::builtin_keychain("read_only") } }),
        )
        .await;
    let beta_secret = token["data"]["createApiToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}"))
        .to_owned();
    let own = app
        .gql(Some(&beta_secret), WHO_CAN, json!({ "o": beta, "k": "members.read" }))
        .await;
    assert_eq!(own["data"]["whoCan"]["totalCount"], 1, "{own}");
    let body = app
        .gql(Some(&beta_secret), WHO_CAN, json!({ "o": w.org, "k": "members.read" }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn who_can_reads_the_same_number_of_statements_for_five_holders_or_five_hundred() {
    let w = world().await;
    let app = &w.app;
    let count = |app: &TestApp| app.app.store.statement_count();
    // Warm: the first request also reads the caller's access.
    who_can(app, &w.owner, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    let before = count(app);
    let small = who_can(app, &w.owner, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    let small_statements = count(app) - before;
    assert!(small["errors"].is_null(), "{small}");
    bulk_members_with_role(app, &w.org, 500, Some(raw_id(&builtin_role("viewer")))).await;
    who_can(app, &w.owner, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    let before = count(app);
    let large = who_can(app, &w.owner, &w.org, "ssh_keys.read", Some(&w.staging)).await;
    let large_statements = count(app) - before;
    assert!(large["errors"].is_null(), "{large}");
    assert_eq!(large["data"]["whoCan"]["totalCount"], 505);
    assert_eq!(large["data"]["whoCan"]["edges"].as_array().map(Vec::len), Some(100));
    println!("whoCan: {small_statements} statements for 5 holders, {large_statements} for 505");
    assert_eq!(small_statements, large_statements);
}
