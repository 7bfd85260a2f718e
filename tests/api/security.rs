//! Each finding of the security review, tried as an attacker would over HTTP: every one must be
//! refused with its code and change nothing. SECURITY.md names the test of each.
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_keychain, builtin_role, error_code, spawn_app, spawn_with, test_args};

/// Runs `field(input: $input) { selection }` with a bearer credential.
async fn mutate(app: &TestApp, bearer: &str, field: &str, input: Value, selection: &str) -> Value {
    // Every mutation takes its own `<Mutation>Input`.
    let input_type = format!("{}{}Input", field[..1].to_uppercase(), &field[1..]);
    app.gql(
        Some(bearer),
        &format!("mutation($input: {input_type}!) {{ {field}(input: $input) {{ {selection} }} }}"),
        json!({ "input": input }),
    )
    .await
}

fn ok(body: &Value) -> bool {
    body["errors"].is_null()
}

fn at<'a>(body: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(&body["data"], |v, k| &v[*k])
}

fn text(body: &Value, path: &[&str]) -> String {
    at(body, path)
        .as_str()
        .unwrap_or_else(|| panic!("no {path:?} in {body}"))
        .to_owned()
}

/// An organization of `owner` with `people` as members holding the given built-in roles.
async fn organization_with(
    app: &TestApp,
    owner: &TestUser,
    slug: &str,
    people: &[(&TestUser, &str)],
) -> (String, Vec<String>) {
    let org = app.create_organization(owner, slug).await;
    let mut memberships = Vec::new();
    for (user, role) in people {
        let membership = app.add_member(&org, user).await;
        let body = app
            .change_role(owner, true, &membership, &builtin_role(role), None)
            .await;
        assert!(ok(&body), "{body}");
        memberships.push(membership);
    }
    (org, memberships)
}

/// A server whose FREE plan allows `admins` admins and `members` members.
async fn spawn_with_limits(admins: u32, members: u32) -> TestApp {
    let mut args = test_args(&crate::helpers::fresh_database_url().await);
    args.plan_limits = Some(format!(
        r#"{{"FREE": {{"admins": {admins}, "members": {members}, "customRoles": 10, "customKeychains": 10, "workspaces": 5}}}}"#
    ));
    spawn_with(args).await
}

async fn service_account(app: &TestApp, bearer: &str, org: &str, roles: &[&str]) -> Value {
    let bindings: Vec<Value> = roles.iter().map(|r| json!({ "roleId": builtin_role(r) })).collect();
    mutate(
        app,
        bearer,
        "createServiceAccount",
        json!({ "organizationId": org, "name": "robot", "roleBindings": bindings }),
        "membership { id }",
    )
    .await
}

async fn owner_count(app: &TestApp, bearer: &str, slug: &str) -> usize {
    let body = app
        .gql(
            Some(bearer),
            "query($s: String!) { organization(slug: $s) { members(first: 100) { nodes { roleBindings { role { name } } } } } }",
            json!({ "s": slug }),
        )
        .await;
    at(&body, &["organization", "members", "nodes"])
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .filter(|m| {
            m["roleBindings"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["role"]["name"] == "owner"))
        })
        .count()
}

#[tokio::test]
async fn finding_1_an_admin_cannot_mint_a_token_for_a_richer_service_account() {
    let app = spawn_with_limits(10, 25).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let admin = app.sign_up("admin@example.com", "Admin").await;
    let (org, _) = organization_with(&app, &owner, "acme", &[(&admin, "admin")]).await;
    let robot = service_account(&app, &owner.access_token, &org, &["owner"]).await;
    assert!(ok(&robot), "{robot}");
    let robot = text(&robot, &["createServiceAccount", "membership", "id"]);
    let tokens_before = app.count_rows("api_tokens").await;

    let minted = mutate(
        &app,
        &admin.access_token,
        "createServiceAccountToken",
        json!({ "membershipId": robot, "name": "escape" }),
        "token",
    )
    .await;
    assert_eq!(error_code(&minted), "FORBIDDEN", "{minted}");
    assert_eq!(minted["errors"][0]["extensions"]["key"], "organization.delete");
    assert_eq!(app.count_rows("api_tokens").await, tokens_before);
    // The owner and the robot, never the admin.
    assert_eq!(owner_count(&app, &owner.access_token, "acme").await, 2);

    // A custom role of service_accounts.manage and members.read cannot mint from an admin robot.
    let minter = app.sign_up("minter@example.com", "Minter").await;
    let minter_membership = app.add_member(&org, &minter).await;
    let role = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "minters", "keys": ["service_accounts.manage", "members.read"] }),
        "role { id }",
    )
    .await;
    let role = text(&role, &["createRole", "role", "id"]);
    assert!(ok(&app
        .change_role(&owner, true, &minter_membership, &role, None)
        .await));
    let admin_robot = service_account(&app, &owner.access_token, &org, &["admin"]).await;
    let admin_robot = text(&admin_robot, &["createServiceAccount", "membership", "id"]);
    let minted = mutate(
        &app,
        &minter.access_token,
        "createServiceAccountToken",
        json!({ "membershipId": admin_robot, "name": "escape" }),
        "token",
    )
    .await;
    assert_eq!(error_code(&minted), "FORBIDDEN", "{minted}");
    assert_eq!(app.count_rows("api_tokens").await, tokens_before);
    app.stop().await;
}

#[tokio::test]
async fn finding_2_a_keychain_bound_token_cannot_mint_past_its_keys() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let robot = service_account(&app, &owner.access_token, &org, &["admin"]).await;
    let robot = text(&robot, &["createServiceAccount", "membership", "id"]);
    let chain = mutate(
        &app,
        &owner.access_token,
        "createKeychain",
        json!({ "organizationId": org, "name": "minting", "keys": ["service_accounts.manage"] }),
        "keychain { id }",
    )
    .await;
    let chain = text(&chain, &["createKeychain", "keychain", "id"]);
    let narrow = mutate(
        &app,
        &owner.access_token,
        "createApiToken",
        json!({ "name": "narrow", "organizationId": org, "keychainId": chain }),
        "token",
    )
    .await;
    let narrow = text(&narrow, &["createApiToken", "token"]);
    let tokens_before = app.count_rows("api_tokens").await;
    let minted = mutate(
        &app,
        &narrow,
        "createServiceAccountToken",
        json!({ "membershipId": robot, "name": "wide" }),
        "token",
    )
    .await;
    assert_eq!(error_code(&minted), "FORBIDDEN", "{minted}");
    assert_eq!(app.count_rows("api_tokens").await, tokens_before);

    // A token may mint within its keys, never outliving itself.
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let full = mutate(
        &app,
        &owner.access_token,
        "createApiToken",
        json!({ "name": "full", "organizationId": org, "expiresAt": soon }),
        "token",
    )
    .await;
    let full = text(&full, &["createApiToken", "token"]);
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let outliving = mutate(
        &app,
        &full,
        "createServiceAccountToken",
        json!({ "membershipId": robot, "name": "later", "expiresAt": later }),
        "token",
    )
    .await;
    assert_eq!(error_code(&outliving), "BAD_USER_INPUT", "{outliving}");
    let within = mutate(
        &app,
        &full,
        "createServiceAccountToken",
        json!({ "membershipId": robot, "name": "within" }),
        "apiToken { expiresAt }",
    )
    .await;
    assert!(ok(&within), "{within}");
    assert!(at(&within, &["createServiceAccountToken", "apiToken", "expiresAt"]).is_string());
    app.stop().await;
}

#[tokio::test]
async fn finding_3_owner_only_keys_never_enter_a_custom_role_or_keychain() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let via_chain = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "everything", "keychainIds": [builtin_keychain("all_keys")] }),
        "role { id }",
    )
    .await;
    assert_eq!(error_code(&via_chain), "BAD_USER_INPUT", "{via_chain}");
    assert_eq!(via_chain["errors"][0]["extensions"]["field"], "keychainIds");
    let message = via_chain["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("organization.delete") && message.contains("organization.transfer"));
    let direct = mutate(
        &app,
        &owner.access_token,
        "createKeychain",
        json!({ "organizationId": org, "name": "deleters", "keys": ["organization.delete"] }),
        "keychain { id }",
    )
    .await;
    assert_eq!(error_code(&direct), "BAD_USER_INPUT", "{direct}");
    let role = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "plain", "keys": ["members.read"] }),
        "role { id }",
    )
    .await;
    let role = text(&role, &["createRole", "role", "id"]);
    let assigned = mutate(
        &app,
        &owner.access_token,
        "assignKeychainToRole",
        json!({ "keychainId": builtin_keychain("all_keys"), "roleId": role }),
        "role { id }",
    )
    .await;
    assert_eq!(error_code(&assigned), "BAD_USER_INPUT", "{assigned}");
    assert_eq!(app.count_rows("role_keychains").await, 0);
    assert_eq!(app.count_rows("keychains").await, 8);
    app.stop().await;
}

#[tokio::test]
async fn finding_4_admin_class_roles_are_granted_by_owners_and_counted_as_admins() {
    let app = spawn_with_limits(3, 25).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let admin = app.sign_up("admin@example.com", "Admin").await;
    let (org, _) = organization_with(&app, &owner, "acme", &[(&admin, "admin")]).await;
    let role = mutate(
        &app,
        &admin.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "deputies", "keychainIds": [builtin_keychain("administration")] }),
        "role { id }",
    )
    .await;
    assert!(ok(&role), "an admin may define it: {role}");
    let role = text(&role, &["createRole", "role", "id"]);
    let mut others = Vec::new();
    for i in 0..3 {
        let user = app.sign_up(&format!("p{i}@example.com"), "P").await;
        others.push(app.add_member(&org, &user).await);
    }
    let body = app.change_role(&admin, true, &others[0], &role, None).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "only owners grant it: {body}");
    assert_eq!(body["errors"][0]["extensions"]["key"], "organization.update");
    // The owner may, until holders of admin-class keys reach the limit, whatever the role's name.
    assert!(ok(&app.change_role(&owner, true, &others[0], &role, None).await));
    let body = app.change_role(&owner, true, &others[1], &role, None).await;
    assert_eq!(error_code(&body), "LIMIT_EXCEEDED", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "admins");
    let limits = app
        .gql(
            Some(&owner.access_token),
            "{ organization(slug: \"acme\") { limits { admins { used limit } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        at(&limits, &["organization", "limits", "admins", "used"]),
        3,
        "{limits}"
    );
    // Editing a held role to carry admin-class keys past the limit is refused as well.
    let plain = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "plain", "keys": ["members.read"] }),
        "role { id }",
    )
    .await;
    let plain = text(&plain, &["createRole", "role", "id"]);
    assert!(ok(&app.change_role(&owner, true, &others[2], &plain, None).await));
    let widened = mutate(
        &app,
        &owner.access_token,
        "updateRole",
        json!({ "roleId": plain, "keys": ["members.read", "roles.manage"] }),
        "role { id }",
    )
    .await;
    assert_eq!(error_code(&widened), "LIMIT_EXCEEDED", "{widened}");
    app.stop().await;
}

#[tokio::test]
async fn finding_5_a_role_or_keychain_is_changed_only_by_holders_of_all_its_keys() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let editor = app.sign_up("editor@example.com", "Editor").await;
    let org = app.create_organization(&owner, "acme").await;
    let editor_membership = app.add_member(&org, &editor).await;
    let editors = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "editors", "keys": ["roles.manage", "keychains.manage"] }),
        "role { id }",
    )
    .await;
    let editors = text(&editors, &["createRole", "role", "id"]);
    assert!(ok(&app
        .change_role(&owner, true, &editor_membership, &editors, None)
        .await));
    // Without `roles.assign` nothing is granted, however small.
    let granted = app
        .change_role(&editor, true, &editor_membership, &builtin_role("member"), None)
        .await;
    assert_eq!(error_code(&granted), "FORBIDDEN", "{granted}");
    assert_eq!(granted["errors"][0]["extensions"]["key"], "roles.assign");
    let rich = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "auditors", "keys": ["audit.read", "tokens.manage", "members.remove"] }),
        "role { id }",
    )
    .await;
    let rich = text(&rich, &["createRole", "role", "id"]);
    let stripped = mutate(
        &app,
        &editor.access_token,
        "updateRole",
        json!({ "roleId": rich, "keys": [] }),
        "role { id }",
    )
    .await;
    assert_eq!(error_code(&stripped), "FORBIDDEN", "{stripped}");
    assert_eq!(stripped["errors"][0]["extensions"]["key"], "members.remove");
    let deleted = mutate(
        &app,
        &editor.access_token,
        "deleteRole",
        json!({ "roleId": rich }),
        "deletedRoleId",
    )
    .await;
    assert_eq!(error_code(&deleted), "FORBIDDEN", "{deleted}");
    let replaced = mutate(
        &app,
        &editor.access_token,
        "importRoles",
        json!({ "organizationId": org, "document": "{\"version\": 1}", "format": "JSON", "mode": "REPLACE" }),
        "deleted { name }",
    )
    .await;
    assert_eq!(error_code(&replaced), "FORBIDDEN", "{replaced}");
    let chain = mutate(
        &app,
        &owner.access_token,
        "createKeychain",
        json!({ "organizationId": org, "name": "powers", "keys": ["servers.power"] }),
        "keychain { id }",
    )
    .await;
    let chain = text(&chain, &["createKeychain", "keychain", "id"]);
    let emptied = mutate(
        &app,
        &editor.access_token,
        "updateKeychain",
        json!({ "keychainId": chain, "keys": [] }),
        "keychain { id }",
    )
    .await;
    assert_eq!(error_code(&emptied), "FORBIDDEN", "{emptied}");
    assert_eq!(app.count_rows("role_keys").await, 5);
    assert_eq!(app.count_rows("keychain_keys").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn finding_6_a_confined_token_sees_and_does_nothing_outside_its_organization() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org_a = app.create_organization(&ada, "alpha").await;
    let org_b = app.create_organization(&ada, "bravo").await;
    let token_of = |body: &Value| text(body, &["createApiToken", "token"]);
    let in_a = mutate(
        &app,
        &ada.access_token,
        "createApiToken",
        json!({ "name": "a", "organizationId": org_a }),
        "token apiToken { id }",
    )
    .await;
    let confined = token_of(&in_a);
    let in_b = mutate(
        &app,
        &ada.access_token,
        "createApiToken",
        json!({ "name": "b", "organizationId": org_b }),
        "token apiToken { id }",
    )
    .await;
    let b_token_id = text(&in_b, &["createApiToken", "apiToken", "id"]);
    let personal = mutate(
        &app,
        &ada.access_token,
        "createApiToken",
        json!({ "name": "p" }),
        "apiToken { id }",
    )
    .await;
    let personal_id = text(&personal, &["createApiToken", "apiToken", "id"]);

    let listed = app
        .gql(Some(&confined), "{ viewer { apiTokens { name } } }", json!({}))
        .await;
    assert_eq!(
        at(&listed, &["viewer", "apiTokens"]),
        &json!([{ "name": "a" }]),
        "{listed}"
    );
    for id in [&b_token_id, &personal_id] {
        let node = app
            .gql(
                Some(&confined),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert!(at(&node, &["node"]).is_null(), "{node}");
    }
    let revoked = mutate(
        &app,
        &confined,
        "revokeApiToken",
        json!({ "apiTokenId": b_token_id }),
        "apiToken { id }",
    )
    .await;
    assert_eq!(error_code(&revoked), "NOT_FOUND", "{revoked}");
    let created = mutate(
        &app,
        &confined,
        "createOrganization",
        json!({ "name": "C", "slug": "charlie" }),
        "organization { id }",
    )
    .await;
    assert_eq!(error_code(&created), "FORBIDDEN", "{created}");
    let out = mutate(
        &app,
        &confined,
        "logOut",
        json!({ "everywhere": true }),
        "endedSessions",
    )
    .await;
    assert_eq!(error_code(&out), "FORBIDDEN", "{out}");
    let accepted = mutate(
        &app,
        &confined,
        "acceptInvitation",
        json!({ "token": "ghi_whatever" }),
        "membership { id }",
    )
    .await;
    assert_eq!(error_code(&accepted), "FORBIDDEN", "{accepted}");
    // Nothing changed: Ada's session works, the other token is live, no third organization.
    assert_eq!(app.count_rows("organizations").await, 2);
    let still = app
        .gql(
            Some(&ada.access_token),
            "{ viewer { apiTokens { name revokedAt } } }",
            json!({}),
        )
        .await;
    assert!(
        at(&still, &["viewer", "apiTokens"])
            .as_array()
            .expect("tokens")
            .iter()
            .all(|t| t["revokedAt"].is_null()),
        "{still}"
    );
    app.stop().await;
}

#[tokio::test]
async fn finding_7_resending_expired_invitations_respects_the_member_limit() {
    let app = spawn_with_limits(3, 3).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let invite = |token: String, email: &'static str| {
        let app = &app;
        let org = org.clone();
        async move {
            mutate(
                app,
                &token,
                "inviteMember",
                json!({ "organizationId": org, "email": email }),
                "invitation { id }",
            )
            .await
        }
    };
    let token = owner.access_token.clone();
    let first = text(
        &invite(token.clone(), "a@example.com").await,
        &["inviteMember", "invitation", "id"],
    );
    let second = text(
        &invite(token, "b@example.com").await,
        &["inviteMember", "invitation", "id"],
    );
    app.app.clock.advance(chrono::Duration::hours(73));
    // The owner signs in again: the access token ended with the 73 hours.
    let token = app.log_in(&owner.email).await;
    assert!(ok(&invite(token.clone(), "c@example.com").await));
    assert!(ok(&invite(token.clone(), "d@example.com").await));
    let resent = mutate(
        &app,
        &token,
        "resendInvitation",
        json!({ "invitationId": first }),
        "invitation { status }",
    )
    .await;
    assert_eq!(error_code(&resent), "LIMIT_EXCEEDED", "{resent}");
    let resent = mutate(
        &app,
        &token,
        "resendInvitation",
        json!({ "invitationId": second }),
        "invitation { status }",
    )
    .await;
    assert_eq!(error_code(&resent), "LIMIT_EXCEEDED", "{resent}");
    app.stop().await;
}

/// The cost of one operation as the response reports it.
fn cost(body: &Value) -> (u64, u64) {
    let cost = &body["extensions"]["cost"];
    (
        cost["requested"]
            .as_u64()
            .unwrap_or_else(|| panic!("no cost in {body}")),
        cost["limit"].as_u64().expect("limit"),
    )
}

#[tokio::test]
async fn finding_8_cost_multiplies_by_page_size_and_refuses_the_alias_flood() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let viewer = app.sign_up("viewer@example.com", "Viewer").await;
    let (org, _) = organization_with(&app, &owner, "acme", &[(&viewer, "viewer")]).await;
    crate::helpers::bulk_members(&app, &org, 98).await;

    let one = "{ organization(slug: \"acme\") { members(first: 100) { edges { node { effectiveKeys } } } } }";
    let body = app.gql(Some(&viewer.access_token), one, json!({})).await;
    assert!(ok(&body), "{body}");
    let (requested, limit) = cost(&body);
    assert_eq!(
        requested,
        2 + 100 * (1 + 1 + 5),
        "members(first: 100) multiplies its selection"
    );
    assert_eq!(
        at(&body, &["organization", "members", "edges"])
            .as_array()
            .expect("edges")
            .len(),
        100
    );

    let aliases: String = (0..450)
        .map(|i| format!("m{i}: members(first: 100) {{ edges {{ node {{ effectiveKeys }} }} }} "))
        .collect();
    let flood = format!("{{ organization(slug: \"acme\") {{ {aliases} }} }}");
    let body = app.gql(Some(&viewer.access_token), &flood, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let refused = &body["errors"][0]["extensions"]["cost"];
    assert!(refused["requested"].as_u64().expect("requested") > limit, "{body}");
    assert!(body["data"].is_null());

    // A batch shares one budget: ten operations just under the limit each are not all run.
    let per = limit as usize / (2 + 100 * 7) - 1;
    let aliases: String = (0..per)
        .map(|i| format!("m{i}: members(first: 100) {{ edges {{ node {{ effectiveKeys }} }} }} "))
        .collect();
    let heavy = format!("{{ organization(slug: \"acme\") {{ {aliases} }} }}");
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": heavy })).collect();
    let response: Value = app
        .client
        .post(app.graphql_url())
        .bearer_auth(&viewer.access_token)
        .json(&batch)
        .send()
        .await
        .expect("batch")
        .json()
        .await
        .expect("json");
    let refused = response
        .as_array()
        .expect("batch answer")
        .iter()
        .filter(|r| error_code(r) == "BAD_USER_INPUT")
        .count();
    assert!(refused >= 9, "{refused} of 10 refused");
    app.stop().await;
}

#[tokio::test]
async fn finding_8_responses_and_execution_time_are_capped() {
    let url = crate::helpers::fresh_database_url().await;
    let mut args = test_args(&url);
    args.max_response_bytes = 2_000;
    let app = spawn_with(args).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    crate::helpers::bulk_members(&app, &org, 60).await;
    let body = app
        .gql(
            Some(&owner.access_token),
            "{ organization(slug: \"acme\") { members(first: 100) { nodes { id user { name email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("bytes")
    );
    app.stop().await;
}

#[tokio::test]
async fn finding_10_two_servers_on_one_database_never_serve_a_removed_member() {
    let first = spawn_app().await;
    let second = spawn_with(test_args(&first.database_url)).await;
    let owner = first.sign_up("owner@example.com", "Owner").await;
    let reader = first.sign_up("reader@example.com", "Reader").await;
    let (org, memberships) = organization_with(&first, &owner, "acme", &[(&reader, "viewer")]).await;
    let audit = "{ organization(slug: \"acme\") { auditLog(first: 1) { totalCount } } }";
    for _ in 0..3 {
        let body = second.gql(Some(&reader.access_token), audit, json!({})).await;
        assert!(ok(&body), "{body}");
    }
    let removed = mutate(
        &first,
        &owner.access_token,
        "removeMember",
        json!({ "membershipId": memberships[0] }),
        "removedMembershipId",
    )
    .await;
    assert!(ok(&removed), "{removed}");
    let body = second.gql(Some(&reader.access_token), audit, json!({})).await;
    assert!(
        at(&body, &["organization"]).is_null(),
        "the removed member reads nothing: {body}"
    );
    let _ = org;
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn finding_11_refusals_and_failed_sign_ins_neither_flood_the_log_nor_clear_caches() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let member = app.sign_up("member@example.com", "Member").await;
    let org = app.create_organization(&owner, "acme").await;
    app.add_member(&org, &member).await;
    let generation = app.app.store.writes.generation();
    let events_before = app.count_rows("audit_events").await;
    for i in 0..50 {
        let body = mutate(
            &app,
            &member.access_token,
            "createWorkspace",
            json!({ "organizationId": org, "name": format!("w{i}"), "slug": format!("w-{i}") }),
            "workspace { id }",
        )
        .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let recorded = app.count_rows("audit_events").await - events_before;
    assert_eq!(recorded, guildhall::domain::audit::DENIALS_RECORDED_PER_MINUTE as i64);
    assert_eq!(
        app.app.store.writes.generation(),
        generation,
        "refusals moved the write clock"
    );
    let body = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "owner@example.com", "password": "wrong password!" } }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        app.app.store.writes.generation(),
        generation,
        "a failed sign-in moved the write clock"
    );
    app.stop().await;
}

#[tokio::test]
async fn finding_12_deleting_an_organization_with_a_bound_custom_role_works() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let member = app.sign_up("member@example.com", "Member").await;
    let org = app.create_organization(&owner, "acme").await;
    let membership = app.add_member(&org, &member).await;
    let chain = mutate(
        &app,
        &owner.access_token,
        "createKeychain",
        json!({ "organizationId": org, "name": "k", "keys": ["servers.read"] }),
        "keychain { id }",
    )
    .await;
    let chain = text(&chain, &["createKeychain", "keychain", "id"]);
    let role = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "r", "keychainIds": [chain] }),
        "role { id }",
    )
    .await;
    let role = text(&role, &["createRole", "role", "id"]);
    assert!(ok(&app.change_role(&owner, true, &membership, &role, None).await));
    let deleted = mutate(
        &app,
        &owner.access_token,
        "deleteOrganization",
        json!({ "organizationId": org, "confirmSlug": "acme" }),
        "deletedOrganizationId",
    )
    .await;
    assert!(ok(&deleted), "{deleted}");
    assert_eq!(app.count_rows("organizations").await, 0);
    assert_eq!(app.count_rows("roles WHERE organization_id IS NOT NULL").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn finding_12_parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let app = spawn_app().await;
    app.sign_up("target@example.com", "Target").await;
    let attempts = (0..60).map(|_| {
        app.gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "target@example.com", "password": "not the password" } }),
        )
    });
    let answers = futures_util::future::join_all(attempts).await;
    let checked = answers.iter().filter(|b| error_code(b) == "UNAUTHENTICATED").count();
    let limited = answers.iter().filter(|b| error_code(b) == "RATE_LIMITED").count();
    assert_eq!(checked, 5, "exactly the limit of wrong passwords is checked");
    assert_eq!(limited, 55);
    app.stop().await;
}

#[tokio::test]
async fn finding_12_sign_ups_are_limited_per_address() {
    let url = crate::helpers::fresh_database_url().await;
    let mut args = test_args(&url);
    args.sign_ups_per_address = 3;
    let app = spawn_with(args).await;
    let sign_up = |i: usize| {
        app.gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
            json!({ "i": { "email": format!("u{i}@example.com"), "password": crate::helpers::PASSWORD, "name": "U" } }),
        )
    };
    let answers = futures_util::future::join_all((0..8).map(sign_up)).await;
    assert_eq!(answers.iter().filter(|b| ok(b)).count(), 3);
    assert_eq!(answers.iter().filter(|b| error_code(b) == "RATE_LIMITED").count(), 5);
    assert_eq!(app.count_rows("users").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn finding_12_huge_audit_filters_and_invitee_views_are_bounded() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let invitee = app.sign_up("invitee@example.com", "Invitee").await;
    let org = app.create_organization(&owner, "acme").await;
    let actions: Vec<String> = (0..40_000).map(|i| format!("a{i}")).collect();
    let body = app
        .gql(
            Some(&owner.access_token),
            "query($a: [String!]) { organization(slug: \"acme\") { auditLog(first: 5, filter: { actions: $a }) { totalCount } } }",
            json!({ "a": actions }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "filter.actions");

    let invited = mutate(
        &app,
        &owner.access_token,
        "inviteMember",
        json!({ "organizationId": org, "email": "invitee@example.com" }),
        "invitation { id }",
    )
    .await;
    assert!(ok(&invited), "{invited}");
    let seen = app
        .gql(
            Some(&invitee.access_token),
            "{ viewer { pendingInvitations { organizationName inviterName offeredRoleNames invitedBy { email }
               organization { slug } roleBindings { role { keys holderCount } } } } }",
            json!({}),
        )
        .await;
    let invitation = &at(&seen, &["viewer", "pendingInvitations"])[0];
    assert_eq!(invitation["organizationName"], "Org acme", "{seen}");
    assert_eq!(invitation["inviterName"], "Owner");
    assert_eq!(invitation["offeredRoleNames"], json!(["member"]));
    assert!(
        invitation["invitedBy"].is_null(),
        "the inviter's email stays hidden: {seen}"
    );
    assert!(invitation["organization"].is_null());
    assert_eq!(invitation["roleBindings"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn review_pricing_a_fragment_bomb_is_cheap_and_it_is_refused() {
    let app = spawn_app().await;
    let user = app.sign_up("user@example.com", "User").await;
    let mut document = String::from("{ ...F0 }");
    for i in 0..40 {
        document.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
    }
    document.push_str(" fragment F40 on Query { viewer { id } }");
    let started = std::time::Instant::now();
    let body = app.gql(Some(&user.access_token), &document, json!({})).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let cycle = app
        .gql(
            Some(&user.access_token),
            "{ ...F } fragment F on Query { ...F ...F viewer { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&cycle), "BAD_USER_INPUT", "{cycle}");
    app.stop().await;
}

#[tokio::test]
async fn review_narrow_owner_tokens_renames_long_offer_lists_and_leaving_by_token_are_refused() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let other = app.sign_up("other@example.com", "Other").await;
    let org = app.create_organization(&owner, "acme").await;
    let membership = app.add_member(&org, &other).await;
    // An owner's token narrowed to a keychain without the owner-only keys is no owner.
    let chain = mutate(
        &app,
        &owner.access_token,
        "createKeychain",
        json!({ "organizationId": org, "name": "granting", "keys": ["roles.assign", "billing.manage", "billing.read", "members.read"] }),
        "keychain { id }",
    )
    .await;
    let chain = text(&chain, &["createKeychain", "keychain", "id"]);
    let narrow = mutate(
        &app,
        &owner.access_token,
        "createApiToken",
        json!({ "name": "n", "organizationId": org, "keychainId": chain }),
        "token",
    )
    .await;
    let narrow = text(&narrow, &["createApiToken", "token"]);
    let granted = mutate(
        &app,
        &narrow,
        "grantRole",
        json!({ "membershipId": membership, "roleId": builtin_role("billing_manager") }),
        "membership { id }",
    )
    .await;
    assert_eq!(error_code(&granted), "FORBIDDEN", "{granted}");
    // Leaving is an account matter.
    let left = mutate(
        &app,
        &narrow,
        "leaveOrganization",
        json!({ "organizationId": org }),
        "__typename",
    )
    .await;
    assert_eq!(error_code(&left), "FORBIDDEN", "{left}");
    // At most 20 offered bindings.
    let many: Vec<Value> = (0..21).map(|_| json!({ "roleId": builtin_role("member") })).collect();
    let robot = mutate(
        &app,
        &owner.access_token,
        "createServiceAccount",
        json!({ "organizationId": org, "name": "r", "roleBindings": many }),
        "membership { id }",
    )
    .await;
    assert_eq!(error_code(&robot), "BAD_USER_INPUT", "{robot}");
    assert_eq!(robot["errors"][0]["extensions"]["field"], "roleBindings");
    // Renaming a role needs every key it holds.
    let rich = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "rich", "keys": ["audit.read", "roles.manage"] }),
        "role { id }",
    )
    .await;
    let rich = text(&rich, &["createRole", "role", "id"]);
    let editors = mutate(
        &app,
        &owner.access_token,
        "createRole",
        json!({ "organizationId": org, "name": "editors", "keys": ["roles.manage"] }),
        "role { id }",
    )
    .await;
    let editors = text(&editors, &["createRole", "role", "id"]);
    assert!(ok(&app.change_role(&owner, true, &membership, &editors, None).await));
    let renamed = mutate(
        &app,
        &other.access_token,
        "updateRole",
        json!({ "roleId": rich, "name": "poor" }),
        "role { name }",
    )
    .await;
    assert_eq!(error_code(&renamed), "FORBIDDEN", "{renamed}");
    app.stop().await;
}

#[tokio::test]
async fn review_unpaged_lists_count_their_real_length_against_the_request_budget() {
    let mut args = test_args(&crate::helpers::fresh_database_url().await);
    args.plan_limits = Some(
        r#"{"FREE": {"admins": 3, "members": 25, "customRoles": 100, "customKeychains": 100, "workspaces": 5}}"#
            .to_owned(),
    );
    let app = spawn_with(args).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let mut chains = Vec::new();
    for i in 0..40 {
        let chain = mutate(
            &app,
            &owner.access_token,
            "createKeychain",
            json!({ "organizationId": org, "name": format!("k{i}"), "keys": ["servers.read"] }),
            "keychain { id }",
        )
        .await;
        chains.push(text(&chain, &["createKeychain", "keychain", "id"]));
    }
    for i in 0..40 {
        let role = mutate(
            &app,
            &owner.access_token,
            "createRole",
            json!({ "organizationId": org, "name": format!("r{i}"), "keychainIds": chains }),
            "role { id }",
        )
        .await;
        assert!(ok(&role), "{role}");
    }
    // Priced at typical list sizes, it is admitted; listed, it would hand out 40 × 40 × 40 roles.
    let nested = "{ organization(slug: \"acme\") { roles { keychains { roles { id } } } } }";
    let body = app.gql(Some(&owner.access_token), nested, json!({})).await;
    let (requested, limit) = cost(&body);
    assert!(requested <= limit, "{body}");
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "{}",
        body.to_string().chars().take(400).collect::<String>()
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("more objects")
    );
    // Within the budget the same lists answer in full.
    let flat = app
        .gql(
            Some(&owner.access_token),
            "{ organization(slug: \"acme\") { roles { keychains { id } } } }",
            json!({}),
        )
        .await;
    assert!(ok(&flat), "{flat}");
    assert_eq!(
        at(&flat, &["organization", "roles"]).as_array().expect("roles").len(),
        48
    );
    app.stop().await;
}

/// Who may see a user is one rule, applied wherever a `User` is returned: a former member who
/// granted a role, sent an invitation or acted in the audit log is no longer shown to the
/// organization (through the member list, a node, an invitation or the log), only named by ID.
#[tokio::test]
async fn a_former_member_is_not_shown_through_grants_invitations_or_the_audit_log() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let carol = app.sign_up("carol@example.com", "Carol").await;
    let organization = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&organization, &bob).await;
    let carol_membership = app.add_member(&organization, &carol).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), None)
        .await));
    assert!(ok(&app
        .change_role(&bob, true, &carol_membership, &builtin_role("member"), None)
        .await));
    let invited = mutate(
        &app,
        &bob.access_token,
        "inviteMember",
        json!({ "organizationId": organization, "email": "dan@example.com", "roleBindings": [] }),
        "invitation { id }",
    )
    .await;
    let invitation = invited["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .expect("invited")
        .to_owned();

    let granters = |body: &Value| -> Vec<Value> {
        body["data"]["organization"]["members"]["edges"]
            .as_array()
            .expect("members")
            .iter()
            .flat_map(|e| e["node"]["roleBindings"].as_array().cloned().unwrap_or_default())
            .map(|b| b["grantedBy"].clone())
            .collect()
    };
    let members = "{ organization(slug: \"acme\") { members(first: 10) { edges { node { roleBindings { grantedBy { name email } } } } } } }";
    let before = app.gql(Some(&ada.access_token), members, json!({})).await;
    assert!(granters(&before).iter().any(|g| g["name"] == "Bob"), "{before}");

    let left = mutate(
        &app,
        &bob.access_token,
        "leaveOrganization",
        json!({ "organizationId": organization }),
        "__typename",
    )
    .await;
    assert!(ok(&left), "{left}");

    for viewer in [&ada, &carol] {
        let after = app.gql(Some(&viewer.access_token), members, json!({})).await;
        assert!(ok(&after), "{after}");
        assert!(!after.to_string().contains("bob@example.com"), "{after}");
        assert!(
            granters(&after).iter().all(|g| g.is_null() || g["name"] != "Bob"),
            "{after}"
        );
        let node = app
            .gql(
                Some(&viewer.access_token),
                "query($id: ID!) { node(id: $id) { ... on Membership { roleBindings { grantedBy { name } } } } }",
                json!({ "id": carol_membership }),
            )
            .await;
        assert!(!node.to_string().contains("Bob"), "{node}");
        let user = app
            .gql(
                Some(&viewer.access_token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": bob.id }),
            )
            .await;
        assert!(user["data"]["node"].is_null(), "{user}");
    }
    let invitation_view = app
        .gql(
            Some(&ada.access_token),
            "query($id: ID!) { node(id: $id) { ... on Invitation { invitedBy { name } inviterName } } }",
            json!({ "id": invitation }),
        )
        .await;
    assert!(
        invitation_view["data"]["node"]["invitedBy"].is_null(),
        "{invitation_view}"
    );
    let log = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { auditLog(first: 50, filter: { actions: [\"role.grant\"] }) { edges { node { actorId actor { name } } } } } }",
            json!({}),
        )
        .await;
    let events = log["data"]["organization"]["auditLog"]["edges"]
        .as_array()
        .expect("events")
        .clone();
    let by_bob: Vec<&Value> = events
        .iter()
        .filter(|e| e["node"]["actorId"] == bob.id.as_str())
        .collect();
    assert_eq!(by_bob.len(), 1, "{log}");
    assert!(by_bob[0]["node"]["actor"].is_null(), "{log}");
    // Bob still sees himself.
    let me = app
        .gql(
            Some(&bob.access_token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": bob.id }),
        )
        .await;
    assert_eq!(me["data"]["node"]["id"], bob.id.as_str(), "{me}");
    app.stop().await;
}
