//! Integrations over HTTP: service accounts, API tokens and the audit log.
use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, builtin_keychain, builtin_role, error_code, spawn_app};

fn ok(body: &Value) -> bool {
    body["errors"].is_null()
}

async fn gql_ok(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let body = app.gql(Some(token), query, variables).await;
    assert!(ok(&body), "{query}: {body}");
    body["data"].clone()
}

async fn create_keychain(app: &TestApp, user: &TestUser, org: &str, name: &str, keys: Value) -> String {
    gql_ok(
        app,
        &user.access_token,
        "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
        json!({ "i": { "organizationId": org, "name": name, "keys": keys } }),
    )
    .await["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned()
}

async fn authorize(app: &TestApp, token: &str, org: &str, key: &str) -> Value {
    app.gql(
        Some(token),
        "query($o: ID!, $k: String!) { authorize(organizationId: $o, key: $k) { allowed reason grants { keychain { name } } } }",
        json!({ "o": org, "k": key }),
    )
    .await
}

fn allowed(body: &Value) -> bool {
    body["data"]["authorize"]["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test]
async fn a_ci_job_works_with_nothing_but_its_service_account_token() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    // Setup by a person: keychain, role, service account, keychain on the role, token.
    let ci_keys = create_keychain(
        &app,
        &ada,
        &org,
        "ci-keys",
        json!(["roles.read", "keychains.read", "keychains.assign", "servers.power"]),
    )
    .await;
    let role = gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
        json!({ "i": { "organizationId": org, "name": "ci" } }),
    )
    .await["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    let account = gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: CreateServiceAccountInput!) { createServiceAccount(input: $i) { membership { id user { kind email name } } } }",
        json!({ "i": { "organizationId": org, "name": "deploy-bot", "roleBindings": [{ "roleId": role }] } }),
    )
    .await;
    let membership = &account["createServiceAccount"]["membership"];
    assert_eq!(
        membership["user"],
        json!({ "kind": "SERVICE", "email": null, "name": "deploy-bot" })
    );
    let membership_id = membership["id"].as_str().expect("id").to_owned();
    gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: AssignKeychainToRoleInput!) { assignKeychainToRole(input: $i) { role { id } } }",
        json!({ "i": { "keychainId": ci_keys, "roleId": role } }),
    )
    .await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let minted = gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: CreateServiceAccountTokenInput!) { createServiceAccountToken(input: $i) { token apiToken { prefix organization { slug } keychain { name } expiresAt } } }",
        json!({ "i": { "membershipId": membership_id, "name": "ci", "keychainId": ci_keys, "expiresAt": expires } }),
    )
    .await;
    let token = minted["createServiceAccountToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(token.starts_with("ghs_"));
    let described = &minted["createServiceAccountToken"]["apiToken"];
    assert!(token.starts_with(described["prefix"].as_str().expect("prefix")));
    assert_eq!(described["organization"]["slug"], "acme");

    // From here on only the token.
    let answer = authorize(&app, &token, &org, "servers.power").await;
    assert!(allowed(&answer));
    assert_eq!(answer["data"]["authorize"]["grants"][0]["keychain"]["name"], "ci-keys");
    assert!(!allowed(&authorize(&app, &token, &org, "billing.read").await));
    let roles = app
        .gql(
            Some(&token),
            "{ organization(slug: \"acme\") { roles { name } } }",
            json!({}),
        )
        .await;
    assert!(
        roles["data"]["organization"]["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .any(|r| r["name"] == "ci"),
        "{roles}"
    );
    let extra = create_keychain(&app, &ada, &org, "extra", json!(["servers.power"])).await;
    let assign =
        "mutation($i: AssignKeychainToRoleInput!) { assignKeychainToRole(input: $i) { role { keychains { name } } } }";
    let body = app
        .gql(
            Some(&token),
            assign,
            json!({ "i": { "keychainId": extra, "roleId": role } }),
        )
        .await;
    assert!(ok(&body), "{body}");
    // A keychain with keys the job lacks cannot be assigned by it.
    let body = app
        .gql(
            Some(&token),
            assign,
            json!({ "i": { "keychainId": builtin_keychain("billing"), "roleId": role } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // The refusal is in the audit log, with the token as actor.
    let log = gql_ok(
        &app,
        &ada.access_token,
        "{ organization(slug: \"acme\") { auditLog(filter: { actions: [\"authorization.denied\"] }) { totalCount nodes { actorTokenId details } } } }",
        json!({}),
    )
    .await;
    let denied = &log["organization"]["auditLog"];
    assert_eq!(denied["totalCount"], 1, "{log}");
    assert_eq!(denied["nodes"][0]["details"]["mutation"], "assignKeychainToRole");
    assert!(denied["nodes"][0]["actorTokenId"].is_string());
    // A service account cannot sign in or mint personal tokens.
    let body = app
        .gql(
            Some(&token),
            "mutation { createApiToken(input: { name: \"more\" }) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    // Removing the service account ends its token.
    gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { removedMembershipId } }",
        json!({ "i": { "membershipId": membership_id } }),
    )
    .await;
    assert_eq!(
        error_code(&authorize(&app, &token, &org, "servers.power").await),
        "UNAUTHENTICATED"
    );
    app.stop().await;
}

async fn personal_token(app: &TestApp, user: &TestUser, input: Value) -> (String, String) {
    let data = gql_ok(
        app,
        &user.access_token,
        "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }",
        json!({ "i": input }),
    )
    .await;
    (
        data["createApiToken"]["token"].as_str().expect("token").to_owned(),
        data["createApiToken"]["apiToken"]["id"]
            .as_str()
            .expect("id")
            .to_owned(),
    )
}

#[tokio::test]
async fn tokens_follow_their_users_live_keys() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("admin"), None)
        .await));
    let (token, _) = personal_token(&app, &bob, json!({ "name": "laptop", "organizationId": org })).await;
    assert!(allowed(&authorize(&app, &token, &org, "members.remove").await));
    assert!(ok(&app
        .change_role(&ada, false, &bob_membership, &builtin_role("admin"), None)
        .await));
    assert!(!allowed(&authorize(&app, &token, &org, "members.remove").await));
    let body = app
        .gql(
            Some(&token),
            "{ organization(slug: \"acme\") { members { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { removedMembershipId } }",
        json!({ "i": { "membershipId": bob_membership } }),
    )
    .await;
    assert_eq!(
        error_code(&authorize(&app, &token, &org, "members.read").await),
        "NOT_FOUND"
    );
    app.stop().await;
}

#[tokio::test]
async fn tokens_are_confined_to_their_organization_and_keychain() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org_a = app.create_organization(&ada, "org-a").await;
    let org_b = app.create_organization(&ada, "org-b").await;
    let (token, _) = personal_token(
        &app,
        &ada,
        json!({ "name": "a only", "organizationId": org_a, "keychainId": builtin_keychain("member_basics") }),
    )
    .await;
    // Organization B does not exist for this token.
    let body = app
        .gql(
            Some(&token),
            "query($b: ID!) { organization(slug: \"org-b\") { id } node(id: $b) { id } viewer { organizations { totalCount } } }",
            json!({ "b": org_b }),
        )
        .await;
    assert!(
        body["data"]["organization"].is_null() && body["data"]["node"].is_null(),
        "{body}"
    );
    assert_eq!(body["data"]["viewer"]["organizations"]["totalCount"], 1);
    assert_eq!(
        error_code(&authorize(&app, &token, &org_b, "members.read").await),
        "NOT_FOUND"
    );
    let body = app
        .gql(
            Some(&token),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }",
            json!({ "i": { "organizationId": org_b, "name": "Pwned" } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    // In A, only the keychain's keys count, although Ada owns A.
    assert!(allowed(&authorize(&app, &token, &org_a, "members.read").await));
    assert!(!allowed(&authorize(&app, &token, &org_a, "billing.read").await));
    let body = app
        .gql(
            Some(&token),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }",
            json!({ "i": { "organizationId": org_a, "name": "Renamed" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["key"], "organization.update");
    // A keychain the user holds through no role cannot bind a token.
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let bob_membership = app.add_member(&org_a, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("member"), None)
        .await));
    let body = app
        .gql(
            Some(&bob.access_token),
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
            json!({ "i": { "name": "x", "organizationId": org_a, "keychainId": builtin_keychain("billing") } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_unauthenticated_and_only_hashes_are_stored() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (expiring, _) = personal_token(&app, &ada, json!({ "name": "short", "expiresAt": soon })).await;
    let (revoked, revoked_id) = personal_token(&app, &ada, json!({ "name": "revoked" })).await;
    let viewer = "{ viewer { email apiTokens { name lastUsedAt revokedAt } } }";
    let body = app.gql(Some(&expiring), viewer, json!({})).await;
    assert_eq!(body["data"]["viewer"]["email"], "ada@example.com", "{body}");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
            json!({ "i": { "name": "late", "expiresAt": past } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "expiresAt");
    gql_ok(
        &app,
        &ada.access_token,
        "mutation($i: RevokeApiTokenInput!) { revokeApiToken(input: $i) { apiToken { revokedAt } } }",
        json!({ "i": { "apiTokenId": revoked_id } }),
    )
    .await;
    assert_eq!(
        error_code(&app.gql(Some(&revoked), viewer, json!({})).await),
        "UNAUTHENTICATED"
    );
    app.app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        error_code(&app.gql(Some(&expiring), viewer, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.gql(Some("ghp_made_up"), viewer, json!({})).await),
        "UNAUTHENTICATED"
    );

    // Ada's own access token ended with the two hours too.
    let ada_token = app.log_in(&ada.email).await;
    let listed = gql_ok(&app, &ada_token, viewer, json!({})).await;
    let tokens = listed["viewer"]["apiTokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .any(|t| t["name"] == "short" && t["lastUsedAt"].is_string())
    );
    let store = app.store().await;
    let rows = store
        .conn
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT token_hash, prefix FROM api_tokens",
        ))
        .await
        .expect("rows");
    store.close().await;
    for row in rows {
        let hash: String = row.try_get("", "token_hash").expect("hash");
        let prefix: String = row.try_get("", "prefix").expect("prefix");
        assert_eq!(hash.len(), 64);
        assert!(prefix.len() <= 10);
        for secret in [&expiring, &revoked] {
            assert!(!hash.contains(secret.as_str()));
        }
    }
    app.stop().await;
}

/// The token of the newest owner-recovery link mailed to the recovery contact.
async fn recovery_link(app: &TestApp) -> String {
    let store = app.store().await;
    let row = store
        .conn
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT body FROM mail_outbox WHERE recipient = 'rescue@example.com' ORDER BY id DESC",
        ))
        .await
        .expect("outbox")
        .expect("a mail");
    store.close().await;
    let body: String = row.try_get("", "body").expect("body");
    let start = body.find("token=").expect("link") + "token=".len();
    body[start..]
        .split(|c: char| c.is_whitespace() || c == '&')
        .next()
        .expect("token")
        .to_owned()
}

/// Runs a mutation that must succeed and must add at least one audit event.
struct Walk<'a> {
    app: &'a TestApp,
    ran: BTreeSet<String>,
    secrets: Vec<String>,
}

impl Walk<'_> {
    async fn run(&mut self, name: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let before = self.app.count_rows("audit_events").await;
        let body = self.app.gql(token, query, variables).await;
        assert!(ok(&body), "{name}: {body}");
        let after = self.app.count_rows("audit_events").await;
        assert!(after > before, "{name} wrote no audit event");
        self.ran.insert(name.to_owned());
        collect_secrets(&body, &mut self.secrets);
        body["data"][name].clone()
    }
}

fn collect_secrets(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s)
            if ["ghp_", "ghs_", "ghi_", "ghr_", "ghu_", "ghv_", "gha_", "ghc_", "eyJ"]
                .iter()
                .any(|p| s.starts_with(p)) =>
        {
            out.push(s.clone())
        }
        Value::String(s) if s.contains("token=") => {
            out.push(s.split_once("token=").map(|(_, t)| t.to_owned()).unwrap_or_default())
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_mutation_writes_an_audit_event_without_secrets() {
    let app = spawn_app().await;
    let schema = app
        .gql(None, "{ __schema { mutationType { fields { name } } } }", json!({}))
        .await;
    let all: BTreeSet<String> = schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_owned())
        .collect();
    let mut walk = Walk {
        app: &app,
        ran: BTreeSet::new(),
        secrets: vec![PASSWORD.to_owned()],
    };
    walk.run(
        "signUp",
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
        json!({ "i": { "email": "ada@example.com", "password": PASSWORD, "name": "Ada" } }),
    )
    .await;
    let first = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "ada@example.com", "password": PASSWORD } }),
        )
        .await;
    let ada_token = first["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    walk.secrets.push(ada_token.clone());
    walk.run(
        "sendVerificationEmail",
        Some(&ada_token),
        "mutation($i: SendVerificationEmailInput!) { sendVerificationEmail(input: $i) { message } }",
        json!({ "i": { "next": "/invitations" } }),
    )
    .await;
    let verification = app.verification_token("ada@example.com").await;
    walk.secrets.push(verification.clone());
    walk.run(
        "verifyEmail",
        Some(&ada_token),
        "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { user { emailVerified } } }",
        json!({ "i": { "token": verification } }),
    )
    .await;
    let logged = walk
        .run(
            "logIn",
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken } }",
            json!({ "i": { "email": "ada@example.com", "password": PASSWORD } }),
        )
        .await;
    let second = logged["accessToken"].as_str().expect("token").to_owned();
    let refreshed = walk
        .run(
            "refreshSession",
            None,
            "mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { accessToken } }",
            json!({ "i": { "refreshToken": logged["refreshToken"] } }),
        )
        .await;
    let t = Some(ada_token.as_str());
    walk.run(
        "logOut",
        Some(refreshed["accessToken"].as_str().expect("token")),
        "mutation { logOut(input: {}) { endedSessions } }",
        json!({}),
    )
    .await;
    let _ = second;
    let org = walk
        .run("createOrganization", t, "mutation { createOrganization(input: { name: \"Acme\", slug: \"acme\" }) { organization { id } membership { id } } }", json!({}))
        .await;
    let org_id = org["organization"]["id"].as_str().expect("org").to_owned();
    let ada_membership = org["membership"]["id"].as_str().expect("membership").to_owned();
    walk.run(
        "updateOrganization",
        t,
        "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { id } } }",
        json!({ "i": { "organizationId": org_id, "name": "Acme Inc", "plan": "TEAM" } }),
    )
    .await;
    let ws = walk
        .run(
            "createWorkspace",
            t,
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "i": { "organizationId": org_id, "name": "Web", "slug": "web" } }),
        )
        .await;
    let ws_id = ws["workspace"]["id"].as_str().expect("ws").to_owned();
    walk.run(
        "updateWorkspace",
        t,
        "mutation($i: UpdateWorkspaceInput!) { updateWorkspace(input: $i) { workspace { id } } }",
        json!({ "i": { "workspaceId": ws_id, "name": "Website" } }),
    )
    .await;
    let kc = walk
        .run(
            "createKeychain",
            t,
            "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
            json!({ "i": { "organizationId": org_id, "name": "ops", "keys": ["servers.read"] } }),
        )
        .await;
    let kc_id = kc["keychain"]["id"].as_str().expect("kc").to_owned();
    walk.run(
        "updateKeychain",
        t,
        "mutation($i: UpdateKeychainInput!) { updateKeychain(input: $i) { keychain { id } } }",
        json!({ "i": { "keychainId": kc_id, "keys": ["servers.read", "servers.power"] } }),
    )
    .await;
    let role = walk
        .run(
            "createRole",
            t,
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": org_id, "name": "operator" } }),
        )
        .await;
    let role_id = role["role"]["id"].as_str().expect("role").to_owned();
    walk.run(
        "updateRole",
        t,
        "mutation($i: UpdateRoleInput!) { updateRole(input: $i) { role { id } } }",
        json!({ "i": { "roleId": role_id, "description": "Runs things" } }),
    )
    .await;
    walk.run(
        "assignKeychainToRole",
        t,
        "mutation($i: AssignKeychainToRoleInput!) { assignKeychainToRole(input: $i) { role { id } } }",
        json!({ "i": { "keychainId": kc_id, "roleId": role_id } }),
    )
    .await;
    walk.run(
        "unassignKeychainFromRole",
        t,
        "mutation($i: UnassignKeychainFromRoleInput!) { unassignKeychainFromRole(input: $i) { role { id } } }",
        json!({ "i": { "keychainId": kc_id, "roleId": role_id } }),
    )
    .await;
    walk.run("importRoles", t, "mutation($i: ImportRolesInput!) { importRoles(input: $i) { created { name } } }", json!({ "i": { "organizationId": org_id, "format": "JSON", "document": "{\"version\": 1, \"roles\": [{\"name\": \"auditor\", \"keys\": [\"audit.read\"]}]}" } })).await;

    // People: an invitation declined, one revoked after a resend, one accepted, one with sign-up.
    let bob = app.sign_up("bob@example.com", "Bob").await;
    walk.secrets.push(bob.access_token.clone());
    let invite = "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { acceptUrl invitation { id } } }";
    let inv = walk
        .run(
            "inviteMember",
            t,
            invite,
            json!({ "i": { "organizationId": org_id, "email": "bob@example.com" } }),
        )
        .await;
    let inv_id = inv["invitation"]["id"].as_str().expect("id").to_owned();
    walk.run(
        "declineInvitation",
        Some(&bob.access_token),
        "mutation($i: DeclineInvitationInput!) { declineInvitation(input: $i) { invitation { status } } }",
        json!({ "i": { "invitationId": inv_id } }),
    )
    .await;
    let inv = walk
        .run(
            "inviteMember",
            t,
            invite,
            json!({ "i": { "organizationId": org_id, "email": "cy@example.com" } }),
        )
        .await;
    let cy_inv = inv["invitation"]["id"].as_str().expect("id").to_owned();
    walk.run(
        "resendInvitation",
        t,
        "mutation($i: ResendInvitationInput!) { resendInvitation(input: $i) { acceptUrl } }",
        json!({ "i": { "invitationId": cy_inv } }),
    )
    .await;
    walk.run(
        "revokeInvitation",
        t,
        "mutation($i: RevokeInvitationInput!) { revokeInvitation(input: $i) { invitation { status } } }",
        json!({ "i": { "invitationId": cy_inv } }),
    )
    .await;
    let inv = walk
        .run(
            "inviteMember",
            t,
            invite,
            json!({ "i": { "organizationId": org_id, "email": "bob@example.com" } }),
        )
        .await;
    let token = inv["acceptUrl"]
        .as_str()
        .expect("url")
        .split_once("token=")
        .expect("token")
        .1
        .to_owned();
    let accepted = walk
        .run(
            "acceptInvitation",
            Some(&bob.access_token),
            "mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { membership { id } } }",
            json!({ "i": { "token": token } }),
        )
        .await;
    let bob_membership = accepted["membership"]["id"].as_str().expect("membership").to_owned();
    let inv = walk
        .run(
            "inviteMember",
            t,
            invite,
            json!({ "i": { "organizationId": org_id, "email": "dee@example.com" } }),
        )
        .await;
    let token = inv["acceptUrl"]
        .as_str()
        .expect("url")
        .split_once("token=")
        .expect("token")
        .1
        .to_owned();
    let dee = walk.run("acceptInvitationWithSignUp", None, "mutation($i: AcceptInvitationWithSignUpInput!) { acceptInvitationWithSignUp(input: $i) { auth { accessToken } membership { id } } }", json!({ "i": { "token": token, "name": "Dee", "password": PASSWORD } })).await;
    let dee_token = dee["auth"]["accessToken"].as_str().expect("token").to_owned();
    let dee_membership = dee["membership"]["id"].as_str().expect("membership").to_owned();
    walk.run(
        "grantRole",
        t,
        "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }",
        json!({ "i": { "membershipId": bob_membership, "roleId": builtin_role("viewer") } }),
    )
    .await;
    walk.run(
        "revokeRole",
        t,
        "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }",
        json!({ "i": { "membershipId": bob_membership, "roleId": builtin_role("viewer") } }),
    )
    .await;
    // Teams: made, given a role, joined, left, renamed and deleted.
    let team = walk
        .run(
            "createTeam",
            t,
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
            json!({ "i": { "organizationId": org_id, "name": "deployers" } }),
        )
        .await;
    let team_id = team["team"]["id"].as_str().expect("team").to_owned();
    walk.run(
        "grantTeamRole",
        t,
        "mutation($i: GrantTeamRoleInput!) { grantTeamRole(input: $i) { team { id } } }",
        json!({ "i": { "teamId": team_id, "roleId": builtin_role("workspace_viewer"), "workspaceId": ws_id, "reason": "release week" } }),
    )
    .await;
    walk.run(
        "addTeamMember",
        t,
        "mutation($i: AddTeamMemberInput!) { addTeamMember(input: $i) { team { memberCount } } }",
        json!({ "i": { "teamId": team_id, "membershipId": bob_membership } }),
    )
    .await;
    walk.run(
        "removeTeamMember",
        t,
        "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) { team { memberCount } } }",
        json!({ "i": { "teamId": team_id, "membershipId": bob_membership } }),
    )
    .await;
    walk.run(
        "revokeTeamRole",
        t,
        "mutation($i: RevokeTeamRoleInput!) { revokeTeamRole(input: $i) { team { id } } }",
        json!({ "i": { "teamId": team_id, "roleId": builtin_role("workspace_viewer"), "workspaceId": ws_id } }),
    )
    .await;
    walk.run(
        "updateTeam",
        t,
        "mutation($i: UpdateTeamInput!) { updateTeam(input: $i) { team { name } } }",
        json!({ "i": { "teamId": team_id, "name": "shippers", "description": "Ship it" } }),
    )
    .await;
    walk.run(
        "deleteTeam",
        t,
        "mutation($i: DeleteTeamInput!) { deleteTeam(input: $i) { deletedTeamId } }",
        json!({ "i": { "teamId": team_id } }),
    )
    .await;
    walk.run(
        "transferOwnership",
        t,
        "mutation($i: TransferOwnershipInput!) { transferOwnership(input: $i) { membership { id } } }",
        json!({ "i": { "organizationId": org_id, "toMembershipId": dee_membership } }),
    )
    .await;
    walk.run(
        "removeMember",
        t,
        "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { removedMembershipId } }",
        json!({ "i": { "membershipId": bob_membership } }),
    )
    .await;
    let _ = ada_membership;

    // Integrations.
    let api = walk
        .run(
            "createApiToken",
            t,
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }",
            json!({ "i": { "name": "script", "organizationId": org_id } }),
        )
        .await;
    let api_id = api["apiToken"]["id"].as_str().expect("id").to_owned();
    walk.run(
        "revokeApiToken",
        t,
        "mutation($i: RevokeApiTokenInput!) { revokeApiToken(input: $i) { apiToken { revokedAt } } }",
        json!({ "i": { "apiTokenId": api_id } }),
    )
    .await;
    let sa = walk.run("createServiceAccount", t, "mutation($i: CreateServiceAccountInput!) { createServiceAccount(input: $i) { membership { id } } }", json!({ "i": { "organizationId": org_id, "name": "bot", "roleBindings": [{ "roleId": builtin_role("viewer") }] } })).await;
    let sa_membership = sa["membership"]["id"].as_str().expect("membership").to_owned();
    walk.run(
        "createServiceAccountToken",
        t,
        "mutation($i: CreateServiceAccountTokenInput!) { createServiceAccountToken(input: $i) { token } }",
        json!({ "i": { "membershipId": sa_membership, "name": "ci" } }),
    )
    .await;

    // Tear-down mutations.
    walk.run(
        "deleteRole",
        t,
        "mutation($i: DeleteRoleInput!) { deleteRole(input: $i) { deletedRoleId } }",
        json!({ "i": { "roleId": role_id } }),
    )
    .await;
    let contact = walk
        .run(
            "addSubscriberContact",
            t,
            "mutation($i: AddSubscriberContactInput!) { addSubscriberContact(input: $i) { subscriberContact { id } } }",
            json!({ "i": { "organizationId": org_id, "email": "accounts@client.example", "categories": ["payments"] } }),
        )
        .await;
    let contact_id = contact["subscriberContact"]["id"].as_str().expect("contact").to_owned();
    walk.run(
        "updateSubscriberContact",
        t,
        "mutation($i: UpdateSubscriberContactInput!) { updateSubscriberContact(input: $i) { subscriberContact { id } } }",
        json!({ "i": { "contactId": contact_id, "categories": ["payments", "balance_sheet"] } }),
    )
    .await;
    walk.run(
        "sendNotification",
        t,
        "mutation($i: SendNotificationInput!) { sendNotification(input: $i) { recipients } }",
        json!({ "i": { "organizationId": org_id, "category": "payments", "subject": "Paid", "body": "Thank you." } }),
    )
    .await;
    let store = app.store().await;
    let row = store
        .conn
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT unsubscribe_url FROM mail_outbox WHERE kind = 'notification'",
        ))
        .await
        .expect("outbox")
        .expect("a notification");
    store.close().await;
    let url: String = row.try_get("", "unsubscribe_url").expect("url");
    let unsubscribe_token = url.split_once("token=").expect("token").1.to_owned();
    walk.secrets.push(unsubscribe_token.clone());
    walk.run(
        "unsubscribe",
        None,
        "mutation($i: UnsubscribeInput!) { unsubscribe(input: $i) { email } }",
        json!({ "i": { "token": unsubscribe_token } }),
    )
    .await;
    walk.run(
        "removeSubscriberContact",
        t,
        "mutation($i: RemoveSubscriberContactInput!) { removeSubscriberContact(input: $i) { removedContactId } }",
        json!({ "i": { "contactId": contact_id } }),
    )
    .await;
    // Owner safety: Dee (an owner since the transfer) names a recovery contact; Ada recovers
    // through it once, is cancelled, then again after the wait.
    walk.run(
        "setOwnerRecoveryContact",
        Some(&dee_token),
        "mutation($i: SetOwnerRecoveryContactInput!) { setOwnerRecoveryContact(input: $i) { recoveryContact { email } } }",
        json!({ "i": { "organizationId": org_id, "email": "rescue@example.com" } }),
    )
    .await;
    let confirm = recovery_link(&app).await;
    walk.secrets.push(confirm.clone());
    walk.run(
        "confirmOwnerRecoveryContact",
        None,
        "mutation($i: ConfirmOwnerRecoveryContactInput!) { confirmOwnerRecoveryContact(input: $i) { recoveryContact { verifiedAt } } }",
        json!({ "i": { "token": confirm } }),
    )
    .await;
    for round in 0..2 {
        if round == 1 {
            app.app.clock.advance(chrono::Duration::minutes(11));
        }
        walk.run(
            "requestOwnershipRecovery",
            None,
            "mutation($i: RequestOwnershipRecoveryInput!) { requestOwnershipRecovery(input: $i) { message } }",
            json!({ "i": { "organizationId": org_id, "email": "rescue@example.com" } }),
        )
        .await;
        let start = recovery_link(&app).await;
        walk.secrets.push(start.clone());
        walk.run(
            "startOwnershipRecovery",
            t,
            "mutation($i: StartOwnershipRecoveryInput!) { startOwnershipRecovery(input: $i) { recovery { status } } }",
            json!({ "i": { "token": start } }),
        )
        .await;
        if round == 0 {
            walk.run(
                "cancelOwnershipRecovery",
                Some(&dee_token),
                "mutation($i: CancelOwnershipRecoveryInput!) { cancelOwnershipRecovery(input: $i) { recovery { status } } }",
                json!({ "i": { "organizationId": org_id } }),
            )
            .await;
        }
    }
    app.app.clock.advance(chrono::Duration::hours(169));
    let ada_token = app.log_in("ada@example.com").await;
    let t = Some(ada_token.as_str());
    let dee_token = app.log_in("dee@example.com").await;
    walk.run(
        "completeOwnershipRecovery",
        t,
        "mutation($i: CompleteOwnershipRecoveryInput!) { completeOwnershipRecovery(input: $i) { membership { id } } }",
        json!({ "i": { "organizationId": org_id } }),
    )
    .await;
    walk.run(
        "removeOwnerRecoveryContact",
        Some(&dee_token),
        "mutation($i: RemoveOwnerRecoveryContactInput!) { removeOwnerRecoveryContact(input: $i) { organizationId } }",
        json!({ "i": { "organizationId": org_id } }),
    )
    .await;
    walk.run(
        "deleteKeychain",
        t,
        "mutation($i: DeleteKeychainInput!) { deleteKeychain(input: $i) { deletedKeychainId } }",
        json!({ "i": { "keychainId": kc_id } }),
    )
    .await;
    walk.run(
        "deleteWorkspace",
        t,
        "mutation($i: DeleteWorkspaceInput!) { deleteWorkspace(input: $i) { deletedWorkspaceId } }",
        json!({ "i": { "workspaceId": ws_id } }),
    )
    .await;
    walk.run(
        "leaveOrganization",
        t,
        "mutation($i: LeaveOrganizationInput!) { leaveOrganization(input: $i) { leftOrganizationId } }",
        json!({ "i": { "organizationId": org_id } }),
    )
    .await;
    walk.run(
        "deleteOrganization",
        Some(&dee_token),
        "mutation($i: DeleteOrganizationInput!) { deleteOrganization(input: $i) { deletedOrganizationId } }",
        json!({ "i": { "organizationId": org_id, "confirmSlug": "acme" } }),
    )
    .await;

    // The account itself: its name, a forgotten password, a device signed out, a new password
    // and address, and the account deleted.
    let zed = app.sign_up("zed@example.com", "Zed").await;
    walk.secrets.push(zed.access_token.clone());
    walk.run(
        "updateProfile",
        Some(&zed.access_token),
        "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { name } } }",
        json!({ "i": { "name": "Zed Zed" } }),
    )
    .await;
    walk.run(
        "requestPasswordReset",
        None,
        "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { message } }",
        json!({ "i": { "email": "zed@example.com" } }),
    )
    .await;
    let reset = mailed_token(&app, "zed@example.com").await;
    walk.secrets.push(reset.clone());
    let (second, third) = ("zed's second password", "zed's third password");
    walk.run(
        "resetPassword",
        None,
        "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { signedOutEverywhere } }",
        json!({ "i": { "token": reset, "newPassword": second } }),
    )
    .await;
    let mut devices = Vec::new();
    for _ in 0..2 {
        let body = app
            .gql(
                None,
                "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
                json!({ "i": { "email": "zed@example.com", "password": second } }),
            )
            .await;
        devices.push(body["data"]["logIn"]["accessToken"].as_str().expect("token").to_owned());
    }
    walk.secrets.extend(devices.iter().cloned());
    let listed = app
        .gql(Some(&devices[0]), "{ viewer { sessions { id current } } }", json!({}))
        .await;
    let other = listed["data"]["viewer"]["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other device")["id"]
        .clone();
    walk.run(
        "endSession",
        Some(&devices[0]),
        "mutation($i: EndSessionInput!) { endSession(input: $i) { endedSessionId } }",
        json!({ "i": { "sessionId": other } }),
    )
    .await;
    let changed = walk
        .run(
            "changePassword",
            Some(&devices[0]),
            "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { accessToken } }",
            json!({ "i": { "currentPassword": second, "newPassword": third } }),
        )
        .await;
    let zed_token = changed["accessToken"].as_str().expect("token").to_owned();
    walk.run(
        "changeEmail",
        Some(&zed_token),
        "mutation($i: ChangeEmailInput!) { changeEmail(input: $i) { message } }",
        json!({ "i": { "newEmail": "zed.z@example.com", "password": third } }),
    )
    .await;
    let confirm = mailed_token(&app, "zed.z@example.com").await;
    walk.secrets.push(confirm.clone());
    walk.run(
        "confirmEmailChange",
        None,
        "mutation($i: ConfirmEmailChangeInput!) { confirmEmailChange(input: $i) { user { email } } }",
        json!({ "i": { "token": confirm } }),
    )
    .await;
    // Two-factor sign-in: set up, used to sign in, turned off.
    let enrolment = walk
        .run(
            "startTwoFactorEnrollment",
            Some(&zed_token),
            "mutation($i: StartTwoFactorEnrollmentInput!) { startTwoFactorEnrollment(input: $i) { secret otpauthUri } }",
            json!({ "i": { "password": third } }),
        )
        .await;
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    walk.secrets.push(secret.clone());
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).expect("base32");
    let confirmed = walk
        .run(
            "confirmTwoFactorEnrollment",
            Some(&zed_token),
            "mutation($i: ConfirmTwoFactorEnrollmentInput!) { confirmTwoFactorEnrollment(input: $i) { recoveryCodes } }",
            json!({ "i": { "code": guildhall::domain::two_factor::totp_at(&key, app.app.now().timestamp(), 6) } }),
        )
        .await;
    let recovery = confirmed["recoveryCodes"][0].as_str().expect("code").to_owned();
    walk.secrets.push(recovery.clone());
    let challenged = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "zed.z@example.com", "password": third } }),
        )
        .await;
    assert_eq!(error_code(&challenged), "TWO_FACTOR_REQUIRED", "{challenged}");
    let challenge = challenged["errors"][0]["extensions"]["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    walk.secrets.push(challenge.clone());
    walk.run(
        "completeLogIn",
        None,
        "mutation($i: CompleteLogInInput!) { completeLogIn(input: $i) { accessToken } }",
        json!({ "i": { "challenge": challenge, "code": recovery } }),
    )
    .await;
    walk.run(
        "disableTwoFactor",
        Some(&zed_token),
        "mutation($i: DisableTwoFactorInput!) { disableTwoFactor(input: $i) { user { twoFactorEnabled } } }",
        json!({ "i": { "password": third, "code": confirmed["recoveryCodes"][1] } }),
    )
    .await;
    walk.run(
        "deleteAccount",
        Some(&zed_token),
        "mutation($i: DeleteAccountInput!) { deleteAccount(input: $i) { deletedUserId } }",
        json!({ "i": { "password": third } }),
    )
    .await;

    let missing: Vec<&String> = all.difference(&walk.ran).collect();
    assert!(missing.is_empty(), "mutations not walked: {missing:?}");

    // No event holds a password, token or secret.
    let store = app.store().await;
    let rows = store
        .conn
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT action, details, user_agent FROM audit_events",
        ))
        .await
        .expect("rows");
    store.close().await;
    assert!(rows.len() > all.len());
    for row in rows {
        let action: String = row.try_get("", "action").expect("action");
        let details: String = row.try_get("", "details").expect("details");
        for secret in walk.secrets.iter().filter(|s| s.len() > 8) {
            assert!(!details.contains(secret.as_str()), "{action} holds a secret: {details}");
        }
        for marker in ["ghp_", "ghs_", "ghi_", "ghr_", "password", "token_hash"] {
            assert!(!details.to_lowercase().contains(marker), "{action}: {details}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn the_audit_log_filters_by_action_actor_target_and_time_and_needs_audit_read() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    assert!(ok(&app
        .change_role(&ada, true, &bob_membership, &builtin_role("member"), None)
        .await));
    let workspace = app.create_workspace(&ada, &org, "web").await;
    let query = "query($f: AuditFilter) { organization(slug: \"acme\") { auditLog(filter: $f) {
        totalCount nodes { action actor { id } targetType targetId occurredAt clientAddress requestId } } } }";
    let all = gql_ok(&app, &ada.access_token, query, json!({})).await;
    let actions: Vec<&str> = all["organization"]["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["workspace.create", "role.grant", "organization.create"],
        "newest first"
    );
    let newest = &all["organization"]["auditLog"]["nodes"][0];
    assert_eq!(newest["actor"]["id"], ada.id.as_str());
    assert_eq!(newest["targetId"], workspace.as_str());
    assert_eq!(newest["clientAddress"], "127.0.0.1");
    assert!(newest["requestId"].is_string());

    let by_target = gql_ok(
        &app,
        &ada.access_token,
        query,
        json!({ "f": { "targetId": bob_membership } }),
    )
    .await;
    assert_eq!(
        by_target["organization"]["auditLog"]["nodes"][0]["action"],
        "role.grant"
    );
    let by_actor = gql_ok(&app, &ada.access_token, query, json!({ "f": { "actorId": bob.id } })).await;
    assert_eq!(by_actor["organization"]["auditLog"]["totalCount"], 0);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = gql_ok(&app, &ada.access_token, query, json!({ "f": { "since": future } })).await;
    assert_eq!(later["organization"]["auditLog"]["totalCount"], 0);
    let before = gql_ok(
        &app,
        &ada.access_token,
        query,
        json!({ "f": { "until": future, "actions": ["role.grant", "workspace.create"] } }),
    )
    .await;
    assert_eq!(before["organization"]["auditLog"]["totalCount"], 2);
    // Bob, a plain member, cannot read it.
    let body = app.gql(Some(&bob.access_token), query, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["key"], "audit.read");
    app.stop().await;
}

/// The token of the newest account mail with a link to `recipient`.
async fn mailed_token(app: &TestApp, recipient: &str) -> String {
    let store = app.store().await;
    let rows = store
        .conn
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            format!(
                "SELECT body FROM mail_outbox WHERE recipient = '{recipient}' AND kind = 'account_notice' ORDER BY created_at, id"
            ),
        ))
        .await
        .expect("outbox");
    store.close().await;
    let body: String = rows
        .iter()
        .rev()
        .map(|r| r.try_get::<String>("", "body").expect("body"))
        .find(|b| b.contains("token="))
        .unwrap_or_else(|| panic!("no link mailed to {recipient}"));
    let start = body.find("token=").expect("link") + "token=".len();
    body[start..]
        .split(|c: char| c.is_whitespace() || c == '&')
        .next()
        .expect("token")
        .to_owned()
}
