//! Two-factor sign-in: enrolment with a first code, a second step at sign-in, codes that work
//! once, recovery codes, and a challenge that takes only so many wrong codes.
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, spawn_app};

async fn mutate(app: &TestApp, token: Option<&str>, name: &str, input: Value, selection: &str) -> Value {
    let first = name[..1].to_uppercase() + &name[1..];
    app.gql(
        token,
        &format!("mutation($i: {first}Input!) {{ {name}(input: $i) {{ {selection} }} }}"),
        json!({ "i": input }),
    )
    .await
}

/// The code at a Unix time.
fn code_at(key: &[u8], unix: i64) -> String {
    guildhall::domain::two_factor::totp_at(key, unix, 6)
}

async fn challenge(app: &TestApp, email: &str) -> String {
    let body = mutate(
        app,
        None,
        "logIn",
        json!({ "email": email, "password": PASSWORD }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&body), "TWO_FACTOR_REQUIRED", "{body}");
    assert!(
        body["data"].is_null() || body["data"]["logIn"].is_null(),
        "no credentials before the code: {body}"
    );
    body["errors"][0]["extensions"]["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned()
}

#[tokio::test]
async fn two_factor_sign_in_takes_a_code_once_and_recovery_codes_once() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    // Enrolment needs the password, and counts only once a first code confirms it.
    let wrong = mutate(
        &app,
        Some(&ana.access_token),
        "startTwoFactorEnrollment",
        json!({ "password": "not it at all" }),
        "secret",
    )
    .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let started = mutate(
        &app,
        Some(&ana.access_token),
        "startTwoFactorEnrollment",
        json!({ "password": PASSWORD }),
        "secret otpauthUri",
    )
    .await;
    let secret = started["data"]["startTwoFactorEnrollment"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let uri = started["data"]["startTwoFactorEnrollment"]["otpauthUri"]
        .as_str()
        .expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/Guildhall:ana@example.com?secret=") && uri.contains(&secret),
        "{uri}"
    );
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).expect("base32");
    // Not yet in force: signing in still answers credentials.
    let plain = mutate(
        &app,
        None,
        "logIn",
        json!({ "email": "ana@example.com", "password": PASSWORD }),
        "accessToken",
    )
    .await;
    assert!(plain["errors"].is_null(), "{plain}");
    let bad = mutate(
        &app,
        Some(&ana.access_token),
        "confirmTwoFactorEnrollment",
        json!({ "code": "000000" }),
        "recoveryCodes",
    )
    .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    // One instant of the service's clock for the codes that follow, so that a step boundary
    // passing meanwhile changes nothing.
    let t0 = app.app.now().timestamp();
    let confirmed = mutate(
        &app,
        Some(&ana.access_token),
        "confirmTwoFactorEnrollment",
        json!({ "code": code_at(&key, t0) }),
        "recoveryCodes",
    )
    .await;
    let codes: Vec<String> = confirmed["data"]["confirmTwoFactorEnrollment"]["recoveryCodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{confirmed}"))
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let viewer = app
        .gql(
            Some(&ana.access_token),
            "{ viewer { twoFactorEnabled recoveryCodesLeft } }",
            json!({}),
        )
        .await;
    assert_eq!(viewer["data"]["viewer"]["twoFactorEnabled"], true, "{viewer}");
    assert_eq!(viewer["data"]["viewer"]["recoveryCodesLeft"], 10);
    // Turning it on signed the other device (the plain sign-in above) out.
    let other = plain["data"]["logIn"]["accessToken"].as_str().expect("token");
    assert_eq!(
        error_code(&app.gql(Some(other), "{ viewer { id } }", json!({})).await),
        "UNAUTHENTICATED"
    );

    // Sign-in now takes two steps. The code just used for confirming does not work again; the
    // next step's code does, once.
    let first = challenge(&app, "ana@example.com").await;
    let reused = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": first, "code": code_at(&key, t0) }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&reused), "BAD_USER_INPUT", "a code works once: {reused}");
    let next = code_at(&key, t0 + 30);
    let signed = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": first, "code": next }),
        "accessToken",
    )
    .await;
    let token = signed["data"]["completeLogIn"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed}"))
        .to_owned();
    assert!(app.gql(Some(&token), "{ viewer { id } }", json!({})).await["errors"].is_null());
    let again = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": first, "code": next }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED", "a challenge works once: {again}");

    // A recovery code works once, spelled with or without its dash.
    let second = challenge(&app, "ana@example.com").await;
    let spaced = codes[0].replace('-', " ").to_uppercase();
    let recovered = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": second, "code": spaced }),
        "accessToken",
    )
    .await;
    assert!(recovered["errors"].is_null(), "{recovered}");
    let third = challenge(&app, "ana@example.com").await;
    let used = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": third, "code": codes[0] }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&used), "BAD_USER_INPUT", "{used}");
    // Five wrong codes spend a challenge: even a right code is refused after them.
    for _ in 0..4 {
        let wrong = mutate(
            &app,
            None,
            "completeLogIn",
            json!({ "challenge": third, "code": "123456" }),
            "accessToken",
        )
        .await;
        assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    }
    let spent = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": third, "code": codes[1] }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&spent), "UNAUTHENTICATED", "{spent}");
    let made_up = mutate(
        &app,
        None,
        "completeLogIn",
        json!({ "challenge": "ghc_nothing", "code": codes[1] }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&made_up), "UNAUTHENTICATED", "{made_up}");
    // The wrong password is still the wrong password, with no challenge.
    let wrong_password = mutate(
        &app,
        None,
        "logIn",
        json!({ "email": "ana@example.com", "password": "not it at all" }),
        "accessToken",
    )
    .await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED", "{wrong_password}");
    assert!(wrong_password["errors"][0]["extensions"]["challenge"].is_null());

    // Off again (the password is checked): one step.
    // Off again: the password alone is not enough, the second factor is asked too.
    let refused = mutate(
        &app,
        Some(&token),
        "disableTwoFactor",
        json!({ "password": PASSWORD, "code": "000000" }),
        "user { twoFactorEnabled }",
    )
    .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    let off = mutate(
        &app,
        Some(&token),
        "disableTwoFactor",
        json!({ "password": PASSWORD, "code": codes[2] }),
        "user { twoFactorEnabled }",
    )
    .await;
    assert_eq!(
        off["data"]["disableTwoFactor"]["user"]["twoFactorEnabled"], false,
        "{off}"
    );
    let plain = mutate(
        &app,
        None,
        "logIn",
        json!({ "email": "ana@example.com", "password": PASSWORD }),
        "accessToken",
    )
    .await;
    assert!(plain["errors"].is_null(), "{plain}");
    // Challenges past their five minutes go with the next prune.
    assert!(app.count_rows("login_challenges").await > 0);
    let pruned = guildhall::domain::retention::prune(
        &app.app,
        &guildhall::domain::retention::Policy::default(),
        app.app.now() + chrono::Duration::minutes(6),
    )
    .await
    .expect("prune");
    assert!(pruned.login_challenges > 0, "{pruned:?}");
    assert_eq!(app.count_rows("login_challenges").await, 0);
    app.stop().await;
}

/// Turns two-factor sign-in on for a signed-in person; returns the key of their authenticator.
async fn enrol(app: &TestApp, token: &str) -> Vec<u8> {
    let started = mutate(
        app,
        Some(token),
        "startTwoFactorEnrollment",
        json!({ "password": PASSWORD }),
        "secret",
    )
    .await;
    let secret = started["data"]["startTwoFactorEnrollment"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).expect("base32");
    let code = code_at(&key, app.app.now().timestamp());
    let confirmed = mutate(
        app,
        Some(token),
        "confirmTwoFactorEnrollment",
        json!({ "code": code }),
        "recoveryCodes",
    )
    .await;
    assert!(confirmed["errors"].is_null(), "{confirmed}");
    key
}

async fn require_two_factor(app: &TestApp, token: &str, organization: &str, on: bool) -> Value {
    mutate(
        app,
        Some(token),
        "updateOrganization",
        json!({ "organizationId": organization, "requireTwoFactor": on }),
        "organization { requireTwoFactor }",
    )
    .await
}

const GUARDED: &str =
    "query { organization(slug: \"acme\") { name requireTwoFactor viewerKeys members(first: 5) { totalCount } } }";

#[tokio::test]
async fn an_organization_requiring_two_factor_holds_back_members_without_it_until_they_enrol() {
    let app = spawn_app().await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ana, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    let granted = app
        .change_role(
            &ana,
            true,
            &bob_membership,
            &crate::helpers::builtin_role("admin"),
            None,
        )
        .await;
    assert!(granted["errors"].is_null(), "{granted}");

    // Before the requirement, Bob invites Dave as a viewer.
    let invited = mutate(
        &app,
        Some(&bob.access_token),
        "inviteMember",
        json!({ "organizationId": org, "email": "dave@example.com", "roleBindings": [{ "roleId": crate::helpers::builtin_role("viewer") }] }),
        "acceptUrl",
    )
    .await;
    let invitation = invited["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{invited}"))
        .split_once("token=")
        .expect("token")
        .1
        .to_owned();

    // Only an owner may require it, and only with a second factor of their own (else the
    // change would shut them out too).
    let by_admin = require_two_factor(&app, &bob.access_token, &org, true).await;
    assert_eq!(error_code(&by_admin), "FORBIDDEN", "{by_admin}");
    let unprotected_owner = require_two_factor(&app, &ana.access_token, &org, true).await;
    assert_eq!(
        error_code(&unprotected_owner),
        "TWO_FACTOR_REQUIRED",
        "{unprotected_owner}"
    );
    enrol(&app, &ana.access_token).await;
    let on = require_two_factor(&app, &ana.access_token, &org, true).await;
    assert_eq!(
        on["data"]["updateOrganization"]["organization"]["requireTwoFactor"], true,
        "{on}"
    );
    let audited = app
        .gql(
            Some(&ana.access_token),
            "query { organization(slug: \"acme\") { auditLog(first: 1) { nodes { action details } } } }",
            json!({}),
        )
        .await;
    let event = &audited["data"]["organization"]["auditLog"]["nodes"][0];
    assert_eq!(event["action"], "organization.update", "{audited}");
    assert_eq!(
        event["details"]["requireTwoFactor"],
        json!({ "from": false, "to": true })
    );

    // Bob sees the organization, and nothing guarded in it: reads and writes alike.
    let held_back = app.gql(Some(&bob.access_token), GUARDED, json!({})).await;
    assert_eq!(held_back["data"]["organization"]["name"], "Org acme", "{held_back}");
    assert_eq!(held_back["data"]["organization"]["requireTwoFactor"], true);
    assert_eq!(held_back["data"]["organization"]["viewerKeys"], json!([]));
    assert_eq!(error_code(&held_back), "TWO_FACTOR_REQUIRED", "{held_back}");
    assert_eq!(held_back["errors"][0]["path"], json!(["organization", "members"]));
    let workspace = app
        .gql(
            Some(&bob.access_token),
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
            json!({ "i": { "organizationId": org, "name": "ops", "slug": "ops" } }),
        )
        .await;
    assert_eq!(error_code(&workspace), "TWO_FACTOR_REQUIRED", "{workspace}");
    assert_eq!(app.count_rows("workspaces").await, 0);
    // Nor can he hand his admin keys to someone else while held back.
    let cara = app.sign_up("cara@example.com", "Cara").await;
    let cara_membership = app.add_member(&org, &cara).await;
    let handed = app
        .change_role(
            &bob,
            true,
            &cara_membership,
            &crate::helpers::builtin_role("admin"),
            None,
        )
        .await;
    assert_eq!(error_code(&handed), "TWO_FACTOR_REQUIRED", "{handed}");

    // Nor read the organization's custom roles through a built-in keychain they use.
    let role = mutate(
        &app,
        Some(&ana.access_token),
        "createRole",
        json!({ "organizationId": org, "name": "auditor", "keychainIds": [crate::helpers::builtin_keychain("read_only")] }),
        "role { id }",
    )
    .await;
    assert!(role["errors"].is_null(), "{role}");
    let through_keychain = app
        .gql(
            Some(&bob.access_token),
            "query($k: ID!) { node(id: $k) { ... on Keychain { roles { name } } } }",
            json!({ "k": crate::helpers::builtin_keychain("read_only") }),
        )
        .await;
    let names: Vec<&str> = through_keychain["data"]["node"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("{through_keychain}"))
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"viewer") && !names.contains(&"auditor"),
        "{through_keychain}"
    );
    let owner_sees = app
        .gql(
            Some(&ana.access_token),
            "query($k: ID!) { node(id: $k) { ... on Keychain { roles { name } } } }",
            json!({ "k": crate::helpers::builtin_keychain("read_only") }),
        )
        .await;
    assert!(owner_sees.to_string().contains("auditor"), "{owner_sees}");

    // What Bob offered before is not his to give while he is held back.
    let dave = app.sign_up("dave@example.com", "Dave").await;
    let accepted = mutate(
        &app,
        Some(&dave.access_token),
        "acceptInvitation",
        json!({ "token": invitation }),
        "membership { id }",
    )
    .await;
    assert_eq!(error_code(&accepted), "FORBIDDEN", "{accepted}");

    // A token of his own steps around nothing: it acts as Bob.
    let minted = mutate(
        &app,
        Some(&bob.access_token),
        "createApiToken",
        json!({ "name": "laptop", "organizationId": org }),
        "token",
    )
    .await;
    let personal = minted["data"]["createApiToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{minted}"))
        .to_owned();
    let through_token = app.gql(Some(&personal), GUARDED, json!({})).await;
    assert_eq!(error_code(&through_token), "TWO_FACTOR_REQUIRED", "{through_token}");

    // A service account signs in with its token alone: exempt.
    let account = mutate(
        &app,
        Some(&ana.access_token),
        "createServiceAccount",
        json!({ "organizationId": org, "name": "deploy-bot", "roleBindings": [{ "roleId": crate::helpers::builtin_role("admin") }] }),
        "membership { id }",
    )
    .await;
    let account_membership = account["data"]["createServiceAccount"]["membership"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{account}"))
        .to_owned();
    let service = mutate(
        &app,
        Some(&ana.access_token),
        "createServiceAccountToken",
        json!({ "membershipId": account_membership, "name": "ci" }),
        "token",
    )
    .await;
    let service_token = service["data"]["createServiceAccountToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{service}"))
        .to_owned();
    let bot = app.gql(Some(&service_token), GUARDED, json!({})).await;
    assert!(bot["errors"].is_null(), "{bot}");
    assert_eq!(bot["data"]["organization"]["members"]["totalCount"], 4);

    // Once Bob enrols, everything he holds counts again, through his session and his token.
    enrol(&app, &bob.access_token).await;
    for credential in [&bob.access_token, &personal] {
        let back = app.gql(Some(credential), GUARDED, json!({})).await;
        assert!(back["errors"].is_null(), "{back}");
        assert_eq!(back["data"]["organization"]["members"]["totalCount"], 4);
    }
    app.create_workspace(&bob, &org, "ops").await;
    assert_eq!(app.count_rows("workspaces").await, 1);

    let cara_reads = app.gql(Some(&cara.access_token), GUARDED, json!({})).await;
    assert_eq!(error_code(&cara_reads), "TWO_FACTOR_REQUIRED", "{cara_reads}");
    // Turned off, a member without a second factor is no longer held back.
    let off = require_two_factor(&app, &ana.access_token, &org, false).await;
    assert_eq!(
        off["data"]["updateOrganization"]["organization"]["requireTwoFactor"], false,
        "{off}"
    );
    // (Cara holds no role: what she meets now is the ordinary refusal.)
    let cara_reads = app.gql(Some(&cara.access_token), GUARDED, json!({})).await;
    assert_eq!(error_code(&cara_reads), "FORBIDDEN", "{cara_reads}");
}
