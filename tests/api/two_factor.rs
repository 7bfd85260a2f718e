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
