//! What people do to their own account: their name and password, a forgotten password, a new
//! address, their signed-in devices and deleting the account.
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, builtin_role, error_code, spawn_app};

const NEW_PASSWORD: &str = "a brand new secret";

/// Account mail to `recipient`, oldest first.
async fn mails(app: &TestApp, recipient: &str) -> Vec<String> {
    let store = app.store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            format!(
                "SELECT body FROM mail_outbox WHERE recipient = '{recipient}' AND kind = 'account_notice' ORDER BY created_at, id"
            ),
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    rows.iter().map(|r| r.try_get("", "body").expect("body")).collect()
}

fn token_in(mail: &str) -> String {
    let start = mail.find("token=").unwrap_or_else(|| panic!("no link in {mail}")) + "token=".len();
    mail[start..]
        .split(|c: char| c.is_whitespace() || c == '&')
        .next()
        .expect("token")
        .to_owned()
}

async fn mutate(app: &TestApp, token: Option<&str>, name: &str, input: Value, selection: &str) -> Value {
    let first = name[..1].to_uppercase() + &name[1..];
    app.gql(
        token,
        &format!("mutation($i: {first}Input!) {{ {name}(input: $i) {{ {selection} }} }}"),
        json!({ "i": input }),
    )
    .await
}

async fn log_in_with(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(
        None,
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken } }",
        json!({ "i": { "email": email, "password": password } }),
    )
    .await
}

async fn viewer_name(app: &TestApp, token: &str) -> Value {
    app.gql(Some(token), "{ viewer { name } }", json!({})).await
}

#[tokio::test]
async fn a_password_reset_answers_alike_for_every_address_works_once_and_ends_every_session() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let second_device = app.log_in("ana@example.com").await;

    // Known and unknown addresses get the same answer; only the known one gets mail.
    let known = mutate(
        &app,
        None,
        "requestPasswordReset",
        json!({ "email": "ANA@example.com" }),
        "message",
    )
    .await;
    let unknown = mutate(
        &app,
        None,
        "requestPasswordReset",
        json!({ "email": "nobody@example.com" }),
        "message",
    )
    .await;
    assert!(known["errors"].is_null(), "{known}");
    assert_eq!(known["data"], unknown["data"]);
    assert!(mails(&app, "nobody@example.com").await.is_empty());
    let sent = mails(&app, "ana@example.com").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let token = token_in(&sent[0]);
    // The token is stored only as a digest.
    let store = app.store().await;
    let stored = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(store.backend(), "SELECT token_hash FROM account_tokens".to_owned()),
    )
    .await
    .expect("tokens");
    store.close().await;
    let hash: String = stored[0].try_get("", "token_hash").expect("hash");
    assert_ne!(hash, token);
    assert!(!hash.contains(&token));

    // A short password is refused and uses nothing up; then the reset works once.
    let short = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": token, "newPassword": "short" }),
        "signedOutEverywhere",
    )
    .await;
    assert_eq!(error_code(&short), "BAD_USER_INPUT", "{short}");
    let reset = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": token, "newPassword": NEW_PASSWORD }),
        "signedOutEverywhere",
    )
    .await;
    assert_eq!(reset["data"]["resetPassword"]["signedOutEverywhere"], true, "{reset}");
    let again = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": token, "newPassword": "yet another one!" }),
        "signedOutEverywhere",
    )
    .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "{again}");
    // Every session ended: both devices' access tokens and the refresh token stop working.
    for bearer in [&ana.access_token, &second_device] {
        let body = viewer_name(&app, bearer).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let refreshed = mutate(
        &app,
        None,
        "refreshSession",
        json!({ "refreshToken": ana.refresh_token }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&refreshed), "UNAUTHENTICATED", "{refreshed}");
    assert_eq!(
        error_code(&log_in_with(&app, "ana@example.com", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let signed_in = log_in_with(&app, "ana@example.com", NEW_PASSWORD).await;
    assert!(signed_in["errors"].is_null(), "{signed_in}");
    // A made-up token is the same refusal.
    let made_up = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": "gha_nothing", "newPassword": NEW_PASSWORD }),
        "signedOutEverywhere",
    )
    .await;
    assert_eq!(error_code(&made_up), "BAD_USER_INPUT", "{made_up}");

    // Asking is limited per address: the sixth request within the hour is RATE_LIMITED.
    for _ in 0..4 {
        let body = mutate(
            &app,
            None,
            "requestPasswordReset",
            json!({ "email": "ana@example.com" }),
            "message",
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let limited = mutate(
        &app,
        None,
        "requestPasswordReset",
        json!({ "email": "ana@example.com" }),
        "message",
    )
    .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    // Each new request replaces the link before it.
    let sent = mails(&app, "ana@example.com").await;
    let older = token_in(&sent[sent.len() - 2]);
    let stale = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": older, "newPassword": NEW_PASSWORD }),
        "signedOutEverywhere",
    )
    .await;
    assert_eq!(error_code(&stale), "BAD_USER_INPUT", "{stale}");
    app.stop().await;
}

#[tokio::test]
async fn profile_password_and_address_changes_need_the_account_itself() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let other_device = app.log_in("ana@example.com").await;
    app.sign_up("taken@example.com", "Taken").await;

    let renamed = mutate(
        &app,
        Some(&ana.access_token),
        "updateProfile",
        json!({ "name": "  Ana Lovelace " }),
        "user { name }",
    )
    .await;
    assert_eq!(
        renamed["data"]["updateProfile"]["user"]["name"], "Ana Lovelace",
        "{renamed}"
    );
    let blank = mutate(
        &app,
        Some(&ana.access_token),
        "updateProfile",
        json!({ "name": "   " }),
        "user { name }",
    )
    .await;
    assert_eq!(error_code(&blank), "BAD_USER_INPUT", "{blank}");

    // A wrong current password changes nothing.
    let wrong = mutate(
        &app,
        Some(&ana.access_token),
        "changePassword",
        json!({ "currentPassword": "not it at all", "newPassword": NEW_PASSWORD }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert!(log_in_with(&app, "ana@example.com", PASSWORD).await["errors"].is_null());
    // The right one: this device goes on with new credentials, the other is signed out.
    let changed = mutate(
        &app,
        Some(&ana.access_token),
        "changePassword",
        json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD }),
        "accessToken",
    )
    .await;
    let fresh = changed["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{changed}"))
        .to_owned();
    assert_eq!(
        viewer_name(&app, &fresh).await["data"]["viewer"]["name"],
        "Ana Lovelace"
    );
    assert_eq!(error_code(&viewer_name(&app, &other_device).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&viewer_name(&app, &ana.access_token).await),
        "UNAUTHENTICATED"
    );
    assert!(
        mails(&app, "ana@example.com")
            .await
            .iter()
            .any(|m| m.contains("was just changed"))
    );

    // An API token never reaches the account itself.
    let api = mutate(
        &app,
        Some(&fresh),
        "createApiToken",
        json!({ "name": "script" }),
        "token",
    )
    .await;
    let api_token = api["data"]["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    for (name, input) in [
        ("updateProfile", json!({ "name": "Mallory" })),
        (
            "changePassword",
            json!({ "currentPassword": NEW_PASSWORD, "newPassword": "stolen password!" }),
        ),
        (
            "changeEmail",
            json!({ "newEmail": "mallory@example.com", "password": NEW_PASSWORD }),
        ),
        ("deleteAccount", json!({ "password": NEW_PASSWORD })),
    ] {
        let selection = match name {
            "updateProfile" => "user { name }",
            "changePassword" => "accessToken",
            "changeEmail" => "message",
            _ => "deletedUserId",
        };
        let refused = mutate(&app, Some(&api_token), name, input, selection).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{name}: {refused}");
    }

    // A new address: the same answer whether taken or free; only a free one gets a link, the
    // current address a notice, and the link makes the change once.
    let to_taken = mutate(
        &app,
        Some(&fresh),
        "changeEmail",
        json!({ "newEmail": "taken@example.com", "password": NEW_PASSWORD }),
        "message",
    )
    .await;
    let to_free = mutate(
        &app,
        Some(&fresh),
        "changeEmail",
        json!({ "newEmail": "ana.l@example.com", "password": NEW_PASSWORD }),
        "message",
    )
    .await;
    assert!(to_free["errors"].is_null(), "{to_free}");
    assert_eq!(to_taken["data"], to_free["data"]);
    assert!(
        mails(&app, "taken@example.com")
            .await
            .iter()
            .all(|m| !m.contains("token="))
    );
    let link = mails(&app, "ana.l@example.com").await;
    assert_eq!(link.len(), 1, "{link:?}");
    let token = token_in(&link[0]);
    assert!(
        mails(&app, "ana@example.com")
            .await
            .iter()
            .any(|m| m.contains("asked to move it to another address"))
    );
    let confirmed = mutate(
        &app,
        None,
        "confirmEmailChange",
        json!({ "token": token }),
        "user { email }",
    )
    .await;
    assert_eq!(
        confirmed["data"]["confirmEmailChange"]["user"]["email"], "ana.l@example.com",
        "{confirmed}"
    );
    let twice = mutate(
        &app,
        None,
        "confirmEmailChange",
        json!({ "token": token }),
        "user { email }",
    )
    .await;
    assert_eq!(error_code(&twice), "BAD_USER_INPUT", "{twice}");
    assert!(log_in_with(&app, "ana.l@example.com", NEW_PASSWORD).await["errors"].is_null());
    assert_eq!(
        error_code(&log_in_with(&app, "ana@example.com", NEW_PASSWORD).await),
        "UNAUTHENTICATED"
    );
    app.stop().await;
}

#[tokio::test]
async fn devices_are_listed_to_their_owner_only_and_ending_one_signs_it_out() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let laptop = app.log_in("ana@example.com").await;
    let listed = app
        .gql(
            Some(&ana.access_token),
            "{ viewer { sessions { id current createdAt lastUsedAt expiresAt clientAddress userAgent } } }",
            json!({}),
        )
        .await;
    let sessions = listed["data"]["viewer"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).expect("the laptop")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Someone else's session is not found, and ending nothing changes nothing.
    let foreign = mutate(
        &app,
        Some(&bob.access_token),
        "endSession",
        json!({ "sessionId": other }),
        "endedSessionId",
    )
    .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND", "{foreign}");
    assert!(viewer_name(&app, &laptop).await["errors"].is_null());
    let ended = mutate(
        &app,
        Some(&ana.access_token),
        "endSession",
        json!({ "sessionId": other }),
        "endedSessionId",
    )
    .await;
    assert_eq!(ended["data"]["endSession"]["endedSessionId"], other.as_str(), "{ended}");
    assert_eq!(error_code(&viewer_name(&app, &laptop).await), "UNAUTHENTICATED");
    let listed = app
        .gql(Some(&ana.access_token), "{ viewer { sessions { id } } }", json!({}))
        .await;
    assert_eq!(
        listed["data"]["viewer"]["sessions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let again = mutate(
        &app,
        Some(&ana.access_token),
        "endSession",
        json!({ "sessionId": other }),
        "endedSessionId",
    )
    .await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
    app.stop().await;
}

#[tokio::test]
async fn an_account_is_deleted_unless_it_is_the_last_owner_and_its_audit_trail_stays() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let acme = app.create_organization(&ana, "acme").await;
    let beta = app.create_organization(&ana, "beta").await;
    let shared = app.create_organization(&bob, "shared").await;
    let ana_in_shared = app.add_member(&shared, &ana).await;
    assert!(
        app.change_role(&bob, true, &ana_in_shared, &builtin_role("owner"), None)
            .await["errors"]
            .is_null()
    );

    let wrong = mutate(
        &app,
        Some(&ana.access_token),
        "deleteAccount",
        json!({ "password": "not the password" }),
        "deletedUserId",
    )
    .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    // The last owner of acme and beta is refused, naming both; `shared` keeps Bob.
    let refused = mutate(
        &app,
        Some(&ana.access_token),
        "deleteAccount",
        json!({ "password": PASSWORD }),
        "deletedUserId",
    )
    .await;
    assert_eq!(error_code(&refused), "LAST_OWNER", "{refused}");
    let message = refused["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("`acme`") && message.contains("`beta`") && !message.contains("`shared`"),
        "{message}"
    );
    // Another owner in acme, beta deleted: now it goes.
    let bob_in_acme = app.add_member(&acme, &bob).await;
    assert!(
        app.change_role(&ana, true, &bob_in_acme, &builtin_role("owner"), None)
            .await["errors"]
            .is_null()
    );
    let deleted_org = mutate(
        &app,
        Some(&ana.access_token),
        "deleteOrganization",
        json!({ "organizationId": beta, "confirmSlug": "beta" }),
        "__typename",
    )
    .await;
    assert!(deleted_org["errors"].is_null(), "{deleted_org}");
    let api = mutate(
        &app,
        Some(&ana.access_token),
        "createApiToken",
        json!({ "name": "script" }),
        "token",
    )
    .await;
    let api_token = api["data"]["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let deleted = mutate(
        &app,
        Some(&ana.access_token),
        "deleteAccount",
        json!({ "password": PASSWORD }),
        "deletedUserId",
    )
    .await;
    assert_eq!(
        deleted["data"]["deleteAccount"]["deletedUserId"],
        ana.id.as_str(),
        "{deleted}"
    );
    // Gone: her sessions, tokens and memberships; she cannot sign in.
    assert_eq!(
        error_code(&viewer_name(&app, &ana.access_token).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(error_code(&viewer_name(&app, &api_token).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&log_in_with(&app, "ana@example.com", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let members = app
        .gql(
            Some(&bob.access_token),
            "{ organization(slug: \"acme\") { members { totalCount } auditLog(first: 50) { nodes { action actor { id } actorId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(members["data"]["organization"]["members"]["totalCount"], 1, "{members}");
    // Her events stay, their actor no longer resolvable but still named by id.
    let events = members["data"]["organization"]["auditLog"]["nodes"]
        .as_array()
        .expect("events");
    let hers: Vec<&Value> = events.iter().filter(|e| e["actorId"] == ana.id.as_str()).collect();
    assert!(hers.iter().any(|e| e["action"] == "organization.create"), "{members}");
    assert!(hers.iter().any(|e| e["action"] == "member.leave"), "{members}");
    assert!(hers.iter().all(|e| e["actor"].is_null()), "{members}");
    app.stop().await;
}

#[tokio::test]
async fn a_reset_voids_every_link_asked_for_before_it() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    // Someone holding Ana's password asks to move the account to their address...
    let asked = mutate(
        &app,
        Some(&ana.access_token),
        "changeEmail",
        json!({ "newEmail": "thief@example.com", "password": PASSWORD }),
        "message",
    )
    .await;
    assert!(asked["errors"].is_null(), "{asked}");
    let stolen = token_in(&mails(&app, "thief@example.com").await[0]);
    // ...Ana resets her password through her mail...
    mutate(
        &app,
        None,
        "requestPasswordReset",
        json!({ "email": "ana@example.com" }),
        "message",
    )
    .await;
    let reset = mails(&app, "ana@example.com")
        .await
        .into_iter()
        .rev()
        .find(|m| m.contains("reset-password?token="))
        .expect("reset mail");
    let done = mutate(
        &app,
        None,
        "resetPassword",
        json!({ "token": token_in(&reset), "newPassword": NEW_PASSWORD }),
        "signedOutEverywhere",
    )
    .await;
    assert!(done["errors"].is_null(), "{done}");
    // ...and the thief's link is dead.
    let confirmed = mutate(
        &app,
        None,
        "confirmEmailChange",
        json!({ "token": stolen }),
        "user { email }",
    )
    .await;
    assert_eq!(error_code(&confirmed), "BAD_USER_INPUT", "{confirmed}");
    assert!(log_in_with(&app, "ana@example.com", NEW_PASSWORD).await["errors"].is_null());
    app.stop().await;
}
