//! The permission engine over HTTP: grants without escalation, custom roles and keychains,
//! workspaces, authorize, roles documents and plan limits.
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_keychain, builtin_role, error_code, spawn_app};

const BUILT_IN_ROLES: [&str; 8] = [
    "owner",
    "admin",
    "billing_manager",
    "user_admin",
    "viewer",
    "member",
    "workspace_admin",
    "workspace_viewer",
];

fn is_workspace_role(role: &str) -> bool {
    role.starts_with("workspace_")
}

/// Invariant 2 written out for the built-in roles: who may grant or revoke what.
fn expected_allowed(actor: &str, target: &str) -> bool {
    match actor {
        "owner" => true,
        "admin" => !matches!(target, "owner" | "admin" | "billing_manager"),
        "user_admin" => matches!(target, "user_admin" | "member"),
        _ => false,
    }
}

async fn set_plan(app: &TestApp, owner: &TestUser, org: &str, plan: &str) {
    let body = app
        .gql(
            Some(&owner.access_token),
            "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { plan } } }",
            json!({ "input": { "organizationId": org, "plan": plan } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateOrganization"]["organization"]["plan"], plan,
        "{body}"
    );
}

fn ok(body: &Value) -> bool {
    body["errors"].is_null()
}

#[tokio::test]
async fn grant_and_revoke_matrix_of_built_in_roles_follows_invariant_two() {
    let app = spawn_app().await;
    let owner = app.sign_up("boss@example.com", "Boss").await;
    let actor = app.sign_up("actor@example.com", "Actor").await;
    let mut targets = Vec::new();
    for role in BUILT_IN_ROLES {
        targets.push(app.sign_up(&format!("{role}@example.com"), role).await);
    }
    for actor_role in BUILT_IN_ROLES {
        let org = app
            .create_organization(&owner, &format!("m-{}", actor_role.replace('_', "-")))
            .await;
        set_plan(&app, &owner, &org, "ENTERPRISE").await;
        let workspace = app.create_workspace(&owner, &org, "main").await;
        let actor_membership = app.add_member(&org, &actor).await;
        let actor_scope = is_workspace_role(actor_role).then_some(workspace.as_str());
        let body = app
            .change_role(&owner, true, &actor_membership, &builtin_role(actor_role), actor_scope)
            .await;
        assert!(ok(&body), "{actor_role}: {body}");
        for (target_role, target) in BUILT_IN_ROLES.iter().zip(&targets) {
            let membership = app.add_member(&org, target).await;
            let scope = is_workspace_role(target_role).then_some(workspace.as_str());
            let role = builtin_role(target_role);
            let expected = expected_allowed(actor_role, target_role);

            let grant = app.change_role(&actor, true, &membership, &role, scope).await;
            assert_eq!(ok(&grant), expected, "{actor_role} grants {target_role}: {grant}");
            if !expected {
                assert_eq!(error_code(&grant), "FORBIDDEN", "{actor_role} grants {target_role}");
                // Set up the binding as the owner so that revocation can be tried.
                let setup = app.change_role(&owner, true, &membership, &role, scope).await;
                assert!(ok(&setup), "{setup}");
            }
            let revoke = app.change_role(&actor, false, &membership, &role, scope).await;
            assert_eq!(ok(&revoke), expected, "{actor_role} revokes {target_role}: {revoke}");
            if !expected {
                assert_eq!(error_code(&revoke), "FORBIDDEN", "{actor_role} revokes {target_role}");
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn owners_alone_touch_owners_and_the_last_owner_stays() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let cy = app.sign_up("cy@example.com", "Cy").await;
    let org = app.create_organization(&ada, "acme").await;
    let ada_membership = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { viewerMembership { id } } }",
            json!({}),
        )
        .await["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("membership")
        .to_owned();
    let bob_membership = app.add_member(&org, &bob).await;
    let cy_membership = app.add_member(&org, &cy).await;

    // The last owner cannot step down.
    let last = app
        .change_role(&ada, false, &ada_membership, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&last), "LAST_OWNER", "{last}");

    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), None)
        .await));
    assert!(ok(&app
        .change_role(&ada, true, &cy_membership, &builtin_role("user_admin"), None)
        .await));
    // An admin cannot grant owner, and cannot revoke an owner.
    let body = app
        .change_role(&bob, true, &cy_membership, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app
        .change_role(&bob, false, &ada_membership, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    // A user_admin cannot revoke or demote an admin.
    let body = app
        .change_role(&cy, false, &bob_membership, &builtin_role("admin"), None)
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert!(body["errors"][0]["extensions"]["key"].is_string(), "{body}");
    // A second owner lets the first step down; then the second is the last.
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("owner"), None)
        .await));
    assert!(ok(&app
        .change_role(&ada, false, &ada_membership, &builtin_role("owner"), None)
        .await));
    let body = app
        .change_role(&bob, false, &bob_membership, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&body), "LAST_OWNER");
    let owners = app
        .gql(
            Some(&bob.access_token),
            "{ organization(slug: \"acme\") { roles { name holderCount } } }",
            json!({}),
        )
        .await;
    let owner_row = owners["data"]["organization"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "owner")
        .cloned()
        .expect("owner role");
    assert_eq!(owner_row["holderCount"], 1);
    app.stop().await;
}

#[tokio::test]
async fn subsumed_grants_conflict_and_wider_grants_replace() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("member"), None)
        .await));
    // viewer holds every key of member: it replaces the member binding.
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("viewer"), None)
        .await));
    let body = app
        .gql(
            Some(&ada.access_token),
            "query($id: ID!) { node(id: $id) { ... on Membership { roleBindings { role { name } } } } }",
            json!({ "id": bob_membership }),
        )
        .await;
    assert_eq!(
        body["data"]["node"]["roleBindings"],
        json!([{ "role": { "name": "viewer" } }])
    );
    // member is now a subset of what bob holds: CONFLICT, and nothing changes.
    let again = app
        .change_role(&ada, true, &bob_membership, &builtin_role("member"), None)
        .await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    let same = app
        .change_role(&ada, true, &bob_membership, &builtin_role("viewer"), None)
        .await;
    assert_eq!(error_code(&same), "CONFLICT");
    // Scope rules: organization roles are not granted inside a workspace and vice versa.
    let workspace = app.create_workspace(&ada, &org, "web").await;
    let body = app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), Some(&workspace))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "workspaceId");
    let body = app
        .change_role(&ada, true, &bob_membership, &builtin_role("workspace_admin"), None)
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    app.stop().await;
}

#[tokio::test]
async fn custom_definitions_cannot_hold_keys_their_author_lacks() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), None)
        .await));

    let role = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "organizationId": org, "name": "Deleter", "keys": ["members.read", "organization.delete"] } }),
        )
        .await;
    // Owner-only keys never go into a custom role, whoever asks.
    assert_eq!(error_code(&role), "BAD_USER_INPUT", "{role}");
    assert_eq!(role["errors"][0]["extensions"]["field"], "keys");
    let keychain = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: CreateKeychainInput!) { createKeychain(input: $input) { keychain { id } } }",
            json!({ "input": { "organizationId": org, "name": "Transfer", "keys": ["organization.transfer"] } }),
        )
        .await;
    assert_eq!(error_code(&keychain), "BAD_USER_INPUT");
    assert!(
        keychain["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("organization.transfer")
    );
    // Through a built-in keychain the owner-only keys are refused too.
    let via_chain = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "organizationId": org, "name": "Everything", "keychainIds": [builtin_keychain("all_keys")] } }),
        )
        .await;
    assert_eq!(error_code(&via_chain), "BAD_USER_INPUT");
    assert_eq!(via_chain["errors"][0]["extensions"]["field"], "keychainIds");
    // Unknown keys are all named in one error.
    let unknown = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "organizationId": org, "name": "Typos", "keys": ["servers.raed", "members.read", "dbs.manage"] } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT");
    let message = unknown["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("servers.raed") && message.contains("dbs.manage"),
        "{message}"
    );
    assert_eq!(app.count_rows("roles").await, 8, "only the built-in roles exist");
    assert_eq!(app.count_rows("keychains").await, 8);
    app.stop().await;
}

#[tokio::test]
async fn workspace_roles_apply_only_in_their_workspace() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let w1 = app.create_workspace(&ada, &org, "one").await;
    let w2 = app.create_workspace(&ada, &org, "two").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("workspace_admin"), Some(&w1))
        .await));

    let (allowed, answer) = app.authorize(&bob, &org, "servers.manage", Some(&w1)).await;
    assert!(allowed, "{answer}");
    assert_eq!(answer["grants"][0]["role"]["name"], "workspace_admin");
    assert_eq!(answer["grants"][0]["workspace"]["id"], w1.as_str());
    assert_eq!(answer["grants"][0]["keychain"]["name"], "workspace_administration");
    assert!(!app.authorize(&bob, &org, "servers.manage", Some(&w2)).await.0);
    assert!(!app.authorize(&bob, &org, "servers.manage", None).await.0);
    for scope in [None, Some(w1.as_str()), Some(w2.as_str())] {
        let (allowed, answer) = app.authorize(&bob, &org, "billing.read", scope).await;
        assert!(!allowed);
        assert!(
            answer["reason"].as_str().expect("reason").contains("billing.read"),
            "{answer}"
        );
    }
    // Implied keys are granted through the key that implies them.
    let (allowed, answer) = app.authorize(&bob, &org, "ssh_keys.read", Some(&w1)).await;
    assert!(allowed);
    assert!(
        answer["grants"]
            .as_array()
            .expect("grants")
            .iter()
            .any(|g| g["key"] == "ssh_keys.read" || g["key"] == "servers.manage")
    );
    let keys = app
        .gql(
            Some(&bob.access_token),
            "query($w: ID) { organization(slug: \"acme\") { viewerKeys(workspaceId: $w) c: viewerCan(key: \"servers.manage\", workspaceId: $w) } }",
            json!({ "w": w1 }),
        )
        .await;
    let held = keys["data"]["organization"]["viewerKeys"].as_array().expect("keys");
    assert!(held.contains(&json!("servers.manage")) && !held.contains(&json!("billing.read")));
    assert_eq!(keys["data"]["organization"]["c"], true);
    // Bob sees only his workspace.
    let listed = app
        .gql(
            Some(&bob.access_token),
            "{ organization(slug: \"acme\") { workspaces { totalCount nodes { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["workspaces"]["totalCount"], 1,
        "{listed}"
    );
    assert_eq!(
        listed["data"]["organization"]["workspaces"]["nodes"][0]["id"],
        w1.as_str()
    );
    app.stop().await;
}

#[tokio::test]
async fn definitions_in_use_cannot_be_deleted_and_built_ins_never() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    let keychain = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateKeychainInput!) { createKeychain(input: $input) { keychain { id keys } } }",
            json!({ "input": { "organizationId": org, "name": "Deploy", "keys": ["servers.power", "servers.read"] } }),
        )
        .await;
    let keychain_id = keychain["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    let role = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id effectiveKeys kind } } }",
            json!({ "input": { "organizationId": org, "name": "Deployer", "keychainIds": [keychain_id], "keys": ["members.read"] } }),
        )
        .await;
    let role_id = role["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    assert_eq!(
        role["data"]["createRole"]["role"]["effectiveKeys"],
        json!(["members.read", "servers.read", "servers.power"])
    );
    assert!(ok(&app.change_role(&ada, true, &bob_membership, &role_id, None).await));

    let delete_role = "mutation($input: DeleteRoleInput!) { deleteRole(input: $input) { deletedRoleId } }";
    let delete_keychain =
        "mutation($input: DeleteKeychainInput!) { deleteKeychain(input: $input) { deletedKeychainId } }";
    let body = app
        .gql(
            Some(&ada.access_token),
            delete_role,
            json!({ "input": { "roleId": role_id } }),
        )
        .await;
    assert_eq!(error_code(&body), "ROLE_IN_USE", "{body}");
    let body = app
        .gql(
            Some(&ada.access_token),
            delete_keychain,
            json!({ "input": { "keychainId": keychain_id } }),
        )
        .await;
    assert_eq!(error_code(&body), "KEYCHAIN_IN_USE", "{body}");
    for (query, input) in [
        (delete_role, json!({ "roleId": builtin_role("viewer") })),
        (delete_keychain, json!({ "keychainId": builtin_keychain("read_only") })),
        (
            "mutation($input: UpdateRoleInput!) { updateRole(input: $input) { role { id } } }",
            json!({ "roleId": builtin_role("member"), "keys": ["billing.read"] }),
        ),
    ] {
        let body = app.gql(Some(&ada.access_token), query, json!({ "input": input })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    // After revoking and unassigning, both can go.
    assert!(ok(&app.change_role(&ada, false, &bob_membership, &role_id, None).await));
    let unassign = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: UnassignKeychainFromRoleInput!) { unassignKeychainFromRole(input: $input) { role { effectiveKeys } } }",
            json!({ "input": { "keychainId": keychain_id, "roleId": role_id } }),
        )
        .await;
    assert_eq!(
        unassign["data"]["unassignKeychainFromRole"]["role"]["effectiveKeys"],
        json!(["members.read"])
    );
    assert!(ok(&app
        .gql(
            Some(&ada.access_token),
            delete_role,
            json!({ "input": { "roleId": role_id } })
        )
        .await));
    assert!(ok(&app
        .gql(
            Some(&ada.access_token),
            delete_keychain,
            json!({ "input": { "keychainId": keychain_id } })
        )
        .await));
    assert_eq!(app.count_rows("roles").await, 8);
    app.stop().await;
}

#[tokio::test]
async fn revocations_take_effect_on_the_next_authorize() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    let keychain = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateKeychainInput!) { createKeychain(input: $input) { keychain { id } } }",
            json!({ "input": { "organizationId": org, "name": "Power", "keys": ["servers.power"] } }),
        )
        .await["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    let role = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "organizationId": org, "name": "Operator" } }),
        )
        .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    assert!(ok(&app.change_role(&ada, true, &bob_membership, &role, None).await));
    assert!(!app.authorize(&bob, &org, "servers.power", None).await.0);
    let assign =
        "mutation($input: AssignKeychainToRoleInput!) { assignKeychainToRole(input: $input) { role { name } } }";
    assert!(ok(&app
        .gql(
            Some(&ada.access_token),
            assign,
            json!({ "input": { "keychainId": keychain, "roleId": role } })
        )
        .await));
    let (allowed, answer) = app.authorize(&bob, &org, "servers.power", None).await;
    assert!(allowed, "{answer}");
    assert_eq!(answer["grants"][0]["keychain"]["name"], "Power");
    let unassign = "mutation($input: UnassignKeychainFromRoleInput!) { unassignKeychainFromRole(input: $input) { role { name } } }";
    assert!(ok(&app
        .gql(
            Some(&ada.access_token),
            unassign,
            json!({ "input": { "keychainId": keychain, "roleId": role } })
        )
        .await));
    assert!(!app.authorize(&bob, &org, "servers.power", None).await.0);

    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("viewer"), None)
        .await));
    assert!(app.authorize(&bob, &org, "billing.read", None).await.0);
    assert!(ok(&app
        .change_role(&ada, false, &bob_membership, &builtin_role("viewer"), None)
        .await));
    assert!(!app.authorize(&bob, &org, "billing.read", None).await.0);
    app.stop().await;
}

#[tokio::test]
async fn unassigned_members_see_only_the_name_and_their_membership() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("member"), None)
        .await));
    assert!(ok(&app
        .change_role(&ada, false, &bob_membership, &builtin_role("member"), None)
        .await));
    let body = app
        .gql(
            Some(&bob.access_token),
            "{ organization(slug: \"acme\") { name viewerMembership { id unassigned roleBindings { role { name } } } viewerKeys } }",
            json!({}),
        )
        .await;
    let org_view = &body["data"]["organization"];
    assert_eq!(org_view["name"], "Org acme", "{body}");
    assert_eq!(org_view["viewerMembership"]["id"], bob_membership.as_str());
    assert_eq!(org_view["viewerMembership"]["unassigned"], true);
    assert_eq!(org_view["viewerKeys"], json!([]));
    for (field, key) in [
        ("members { totalCount }", "members.read"),
        ("roles { name }", "roles.read"),
        ("keychains { name }", "keychains.read"),
        ("workspaces { totalCount }", "workspaces.read"),
    ] {
        let body = app
            .gql(
                Some(&bob.access_token),
                &format!("{{ organization(slug: \"acme\") {{ {field} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{field}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["key"], key);
    }
    app.stop().await;
}

async fn roles_document(app: &TestApp, user: &TestUser, slug: &str, format: &str) -> String {
    let body = app
        .gql(
            Some(&user.access_token),
            &format!("{{ organization(slug: \"{slug}\") {{ rolesDocument(format: {format}) }} }}"),
            json!({}),
        )
        .await;
    body["data"]["organization"]["rolesDocument"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn import(
    app: &TestApp,
    user: &TestUser,
    org: &str,
    document: &str,
    format: &str,
    mode: &str,
    dry_run: bool,
) -> Value {
    app.gql(
        Some(&user.access_token),
        "mutation($input: ImportRolesInput!) { importRoles(input: $input) {
            created { kind name } updated { kind name } deleted { kind name } unchanged { kind name } dryRun } }",
        json!({ "input": { "organizationId": org, "document": document, "format": format, "mode": mode, "dryRun": dry_run } }),
    )
    .await
}

#[tokio::test]
async fn roles_documents_round_trip_in_json_and_yaml() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let source = app.create_organization(&ada, "source").await;
    let chain = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateKeychainInput!) { createKeychain(input: $input) { keychain { id } } }",
            json!({ "input": { "organizationId": source, "name": "deployers", "description": "Ship it", "keys": ["servers.power", "servers.read"] } }),
        )
        .await["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    for (name, chains, keys) in [
        (
            "release-manager",
            json!([chain, builtin_keychain("member_basics")]),
            json!(["audit.read"]),
        ),
        ("auditor", json!([]), json!(["audit.read", "billing.read"])),
    ] {
        let body = app
            .gql(
                Some(&ada.access_token),
                "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
                json!({ "input": { "organizationId": source, "name": name, "keychainIds": chains, "keys": keys } }),
            )
            .await;
        assert!(ok(&body), "{body}");
    }
    for format in ["JSON", "YAML"] {
        let exported = roles_document(&app, &ada, "source", format).await;
        let slug = format!("target-{}", format.to_lowercase());
        let target = app.create_organization(&ada, &slug).await;
        let before = app.count_rows("roles").await;
        let dry = import(&app, &ada, &target, &exported, format, "MERGE", true).await;
        assert_eq!(dry["data"]["importRoles"]["dryRun"], true, "{dry}");
        assert_eq!(
            dry["data"]["importRoles"]["created"].as_array().expect("created").len(),
            3
        );
        assert_eq!(app.count_rows("roles").await, before, "a dry run writes nothing");
        let done = import(&app, &ada, &target, &exported, format, "MERGE", false).await;
        assert_eq!(
            done["data"]["importRoles"]["created"]
                .as_array()
                .expect("created")
                .len(),
            3,
            "{done}"
        );
        assert_eq!(roles_document(&app, &ada, &slug, format).await, exported);
        // Importing again changes nothing.
        let again = import(&app, &ada, &target, &exported, format, "REPLACE", false).await;
        assert_eq!(
            again["data"]["importRoles"]["unchanged"]
                .as_array()
                .expect("unchanged")
                .len(),
            3,
            "{again}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn imports_are_atomic_list_unknown_keys_and_refuse_escalation() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), None)
        .await));
    let unknown = r#"{"version": 1, "keychains": [{"name": "a", "keys": ["nope.one", "servers.read"]}],
        "roles": [{"name": "r", "keys": ["nope.two"]}]}"#;
    let body = import(&app, &ada, &org, unknown, "JSON", "MERGE", false).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("nope.one") && message.contains("nope.two"),
        "{message}"
    );
    // The second role escalates: nothing of the document is kept.
    let escalating = "version: 1\nroles:\n  - name: fine\n    keys: [members.read]\n  - name: takeover\n    keys: [organization.transfer]\n";
    let body = import(&app, &bob, &org, escalating, "YAML", "MERGE", false).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("organization.transfer")
    );
    assert_eq!(app.count_rows("roles").await, 8);
    let body = import(&app, &ada, &org, "{ not json", "JSON", "MERGE", false).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "document");
    app.stop().await;
}

#[tokio::test]
async fn plan_limits_are_enforced_and_shown() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    let limits = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { limits { plan admins { used limit } members { used limit } workspaces { used limit } } } }",
            json!({}),
        )
        .await;
    let limits = &limits["data"]["organization"]["limits"];
    assert_eq!(limits["plan"], "FREE");
    assert_eq!(limits["admins"], json!({ "used": 1, "limit": 3 }));
    assert_eq!(limits["members"], json!({ "used": 1, "limit": 25 }));
    let max = limits["workspaces"]["limit"].as_i64().expect("limit");
    for i in 0..max {
        app.create_workspace(&ada, &org, &format!("ws-{i}")).await;
    }
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { id } } }",
            json!({ "input": { "organizationId": org, "name": "one too many", "slug": "too-many" } }),
        )
        .await;
    assert_eq!(error_code(&body), "LIMIT_EXCEEDED", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "workspaces");
    assert_eq!(app.count_rows("workspaces").await, max);

    // Owners and admins together are limited as well.
    let mut admins = 1;
    let mut i = 0;
    loop {
        let user = app.sign_up(&format!("admin{i}@example.com"), "Admin").await;
        let membership = app.add_member(&org, &user).await;
        let body = app
            .change_role(&ada, true, &membership, &builtin_role("admin"), None)
            .await;
        if admins < 3 {
            assert!(ok(&body), "{body}");
            admins += 1;
        } else {
            assert_eq!(error_code(&body), "LIMIT_EXCEEDED");
            assert_eq!(body["errors"][0]["extensions"]["limit"], "admins");
            break;
        }
        i += 1;
    }
    app.stop().await;
}

#[tokio::test]
async fn key_catalog_lists_every_key_with_its_rules() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let body = app
        .gql(
            Some(&ada.access_token),
            "{ keyCatalog { id category ownerOnly organizationWide implies } }",
            json!({}),
        )
        .await;
    let keys = body["data"]["keyCatalog"].as_array().expect("keys");
    assert_eq!(keys.len(), 42);
    let delete = keys.iter().find(|k| k["id"] == "organization.delete").expect("key");
    assert_eq!(delete["ownerOnly"], true);
    assert_eq!(delete["organizationWide"], true);
    let servers = keys.iter().find(|k| k["id"] == "servers.manage").expect("key");
    assert_eq!(servers["implies"], json!(["servers.read", "ssh_keys.manage"]));
    assert_eq!(servers["organizationWide"], false);
    app.stop().await;
}

#[tokio::test]
async fn two_owners_demoting_each_other_at_once_never_leave_zero_owners() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let ada_membership = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { viewerMembership { id } } }",
            json!({}),
        )
        .await["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("membership")
        .to_owned();
    let bob_membership = app.add_member(&org, &bob).await;
    let owner = builtin_role("owner");
    for round in 0..20 {
        // Make sure both are owners again.
        for (granter, membership) in [(&ada, &bob_membership), (&bob, &ada_membership)] {
            let _ = app.change_role(granter, true, membership, &owner, None).await;
        }
        let (a, b) = tokio::join!(
            app.change_role(&ada, false, &bob_membership, &owner, None),
            app.change_role(&bob, false, &ada_membership, &owner, None),
        );
        let successes = [&a, &b].iter().filter(|r| ok(r)).count();
        assert_eq!(successes, 1, "round {round}: {a} {b}");
        let failed = if ok(&a) { &b } else { &a };
        let code = error_code(failed);
        assert!(code == "LAST_OWNER" || code == "FORBIDDEN", "round {round}: {failed}");
        let owners = app
            .gql(
                Some(if ok(&a) { &ada.access_token } else { &bob.access_token }),
                "{ organization(slug: \"acme\") { roles { name holderCount } } }",
                json!({}),
            )
            .await;
        let count = owners["data"]["organization"]["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .find(|r| r["name"] == "owner")
            .expect("owner")["holderCount"]
            .as_i64();
        assert_eq!(count, Some(1), "round {round}");
    }
    app.stop().await;
}

#[tokio::test]
async fn nothing_of_another_organization_can_be_changed() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let eve = app.sign_up("eve@example.com", "Eve").await;
    let org = app.create_organization(&ada, "acme").await;
    app.create_organization(&eve, "evil").await;
    let workspace = app.create_workspace(&ada, &org, "web").await;
    let keychain = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateKeychainInput!) { createKeychain(input: $input) { keychain { id } } }",
            json!({ "input": { "organizationId": org, "name": "Ops", "keys": ["servers.read"] } }),
        )
        .await["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    let role = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateRoleInput!) { createRole(input: $input) { role { id } } }",
            json!({ "input": { "organizationId": org, "name": "Ops" } }),
        )
        .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    let ada_membership = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { viewerMembership { id } } }",
            json!({}),
        )
        .await["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("membership")
        .to_owned();
    let attempts = [
        (
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "organizationId": org, "name": "x", "slug": "xyz" }),
        ),
        (
            "mutation($i: UpdateWorkspaceInput!) { updateWorkspace(input: $i) { workspace { id } } }",
            json!({ "workspaceId": workspace, "name": "pwned" }),
        ),
        (
            "mutation($i: DeleteWorkspaceInput!) { deleteWorkspace(input: $i) { deletedWorkspaceId } }",
            json!({ "workspaceId": workspace }),
        ),
        (
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "organizationId": org, "name": "x" }),
        ),
        (
            "mutation($i: UpdateRoleInput!) { updateRole(input: $i) { role { id } } }",
            json!({ "roleId": role, "name": "pwned" }),
        ),
        (
            "mutation($i: DeleteRoleInput!) { deleteRole(input: $i) { deletedRoleId } }",
            json!({ "roleId": role }),
        ),
        (
            "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
            json!({ "organizationId": org, "name": "x" }),
        ),
        (
            "mutation($i: UpdateKeychainInput!) { updateKeychain(input: $i) { keychain { id } } }",
            json!({ "keychainId": keychain, "name": "pwned" }),
        ),
        (
            "mutation($i: DeleteKeychainInput!) { deleteKeychain(input: $i) { deletedKeychainId } }",
            json!({ "keychainId": keychain }),
        ),
        (
            "mutation($i: AssignKeychainToRoleInput!) { assignKeychainToRole(input: $i) { role { id } } }",
            json!({ "keychainId": keychain, "roleId": role }),
        ),
        (
            "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }",
            json!({ "membershipId": ada_membership, "roleId": builtin_role("viewer") }),
        ),
        (
            "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }",
            json!({ "membershipId": ada_membership, "roleId": builtin_role("owner") }),
        ),
        (
            "mutation($i: ImportRolesInput!) { importRoles(input: $i) { dryRun } }",
            json!({ "organizationId": org, "document": "{\"version\": 1}", "format": "JSON" }),
        ),
    ];
    for (query, input) in attempts {
        let body = app.gql(Some(&eve.access_token), query, json!({ "i": input })).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{query}: {body}");
    }
    // Eve cannot use Ada's custom role or workspace in her own organization either.
    let eve_membership = app
        .gql(
            Some(&eve.access_token),
            "{ organization(slug: \"evil\") { viewerMembership { id } } }",
            json!({}),
        )
        .await["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("membership")
        .to_owned();
    let body = app.change_role(&eve, true, &eve_membership, &role, None).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let body = app
        .change_role(
            &eve,
            true,
            &eve_membership,
            &builtin_role("workspace_admin"),
            Some(&workspace),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (status, body, _) = app
        .gql_response(
            Some(&eve.access_token),
            "query($o: ID!) { authorize(organizationId: $o, key: \"members.read\") { allowed } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "NOT_FOUND");
    let names = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { workspaces { nodes { name } } roles { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(names["data"]["organization"]["workspaces"]["nodes"][0]["name"], "web");
    assert_eq!(app.count_rows("roles").await, 9);
    app.stop().await;
}

#[tokio::test]
async fn workspaces_can_be_renamed_and_deleted_with_their_bindings() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let workspace = app.create_workspace(&ada, &org, "web").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(
            &ada,
            true,
            &bob_membership,
            &builtin_role("workspace_admin"),
            Some(&workspace)
        )
        .await));
    // The workspace admin may rename their workspace.
    let body = app
        .gql(
            Some(&bob.access_token),
            "mutation($i: UpdateWorkspaceInput!) { updateWorkspace(input: $i) { workspace { name slug description } } }",
            json!({ "i": { "workspaceId": workspace, "name": "Website", "slug": "website", "description": "The site" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateWorkspace"]["workspace"],
        json!({ "name": "Website", "slug": "website", "description": "The site" })
    );
    // But not create new ones: that needs workspaces.manage organization-wide.
    let body = app
        .gql(
            Some(&bob.access_token),
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "i": { "organizationId": org, "name": "Other", "slug": "other" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["key"], "workspaces.manage");
    let duplicate = app
        .gql(
            Some(&ada.access_token),
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "i": { "organizationId": org, "name": "Again", "slug": "website" } }),
        )
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($i: DeleteWorkspaceInput!) { deleteWorkspace(input: $i) { deletedWorkspaceId } }",
            json!({ "i": { "workspaceId": workspace } }),
        )
        .await;
    assert_eq!(
        body["data"]["deleteWorkspace"]["deletedWorkspaceId"],
        workspace.as_str(),
        "{body}"
    );
    assert_eq!(app.count_rows("workspaces").await, 0);
    // Ada's owner binding is all that is left.
    assert_eq!(app.count_rows("role_bindings").await, 1);
    assert!(!app.authorize(&bob, &org, "servers.read", None).await.0);
    app.stop().await;
}

#[tokio::test]
async fn an_invalid_catalog_refuses_to_start_with_a_clear_message() {
    let dir = std::env::temp_dir().join("guildhall-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("catalog-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        r#"{"keys": [{"id": "a.manage", "category": "x", "implies": ["a.read"]}], "keychains": [], "roles": []}"#,
    )
    .expect("write");
    let mut args = crate::helpers::test_args(&crate::helpers::fresh_database_url().await);
    args.catalog = Some(path.clone());
    let error = match guildhall::server::build(&args).await {
        Ok(_) => panic!("the server started with an invalid catalog"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("a.manage") && error.contains("a.read"), "{error}");
    let _ = std::fs::remove_file(path);
}
