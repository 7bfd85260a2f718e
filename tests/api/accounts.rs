//! Sign-up, sign-in, sessions and bearer-token validation.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, SECRET, TestApp, error_code, spawn_app};

const VIEWER: &str = "{ viewer { id email name kind } }";
const LOG_IN: &str =
    "mutation($input: LogInInput!) { logIn(input: $input) { accessToken refreshToken user { email } } }";
const REFRESH: &str =
    "mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { accessToken refreshToken } }";

async fn log_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(
        None,
        LOG_IN,
        json!({ "input": { "email": email, "password": password } }),
    )
    .await
}

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.gql(None, REFRESH, json!({ "input": { "refreshToken": token } }))
        .await
}

fn claims(user_id_global: &str) -> Value {
    // The `sub` claim is the raw user id inside the global id.
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(user_id_global).expect("b64")).expect("utf8");
    let uuid = raw.split_once(':').expect("typed").1.to_owned();
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": "guildhall", "aud": "guildhall-api", "sub": uuid, "iat": now, "nbf": now,
        "exp": now + 600, "typ": "access", "ver": 0, "sid": uuid::Uuid::nil().to_string()
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// Takes the session id out of a real token so that forged variants differ only where intended.
fn session_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
    claims["sid"].as_str().expect("sid").to_owned()
}

#[tokio::test]
async fn sign_up_log_in_and_viewer() {
    let app = spawn_app().await;
    let ada = app.sign_up("Ada@Example.com", "Ada").await;
    let body = app.gql(Some(&ada.access_token), VIEWER, json!({})).await;
    assert_eq!(body["data"]["viewer"]["email"], "Ada@Example.com");
    assert_eq!(body["data"]["viewer"]["kind"], "HUMAN");
    assert_eq!(body["data"]["viewer"]["id"], ada.id.as_str());

    // Sign-in works with the email in any letter case.
    let body = log_in(&app, "  ada@EXAMPLE.com", PASSWORD).await;
    let token = body["data"]["logIn"]["accessToken"].as_str().expect("token");
    let body = app.gql(Some(token), VIEWER, json!({})).await;
    assert_eq!(body["data"]["viewer"]["name"], "Ada");
    app.stop().await;
}

#[tokio::test]
async fn sign_up_validates_input_and_changes_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "name": "X" }),
            "email",
        ),
        (
            json!({ "email": "x@example.com", "password": "short", "name": "X" }),
            "password",
        ),
        (
            json!({ "email": "x@example.com", "password": PASSWORD, "name": "  " }),
            "name",
        ),
    ];
    for (input, field) in cases {
        let body = app
            .gql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { message } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(app.count_rows("users").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_same_email_in_another_case_is_answered_like_a_free_one_and_creates_nothing() {
    let app = spawn_app().await;
    app.sign_up("grace@example.com", "Grace").await;
    let body = app
        .gql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { message email } }",
            json!({ "input": { "email": "GRACE@Example.COM", "password": PASSWORD, "name": "Other" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(app.count_rows("users").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_is_unauthenticated_and_repeated_failures_are_rate_limited() {
    let app = spawn_app().await;
    app.sign_up("linus@example.com", "Linus").await;
    let unknown = log_in(&app, "nobody@example.com", PASSWORD).await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    for attempt in 0..5 {
        let body = log_in(&app, "linus@example.com", "wrong password!").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}: {body}");
        assert!(body["data"].is_null() || body["data"]["logIn"].is_null());
    }
    // Past the limit even the right password is refused until the window passes.
    let body = log_in(&app, "LINUS@example.com", PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(
        body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_i64()
            .expect("retry after")
            > 0
    );
    // Failed sign-ins are audited, without the password.
    assert_eq!(app.count_rows("login_failures").await, 12);
    app.stop().await;
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let sid = session_of(&ada.access_token);
    let mut base = claims(&ada.id);
    base["sid"] = json!(sid);
    // Control: a token forged with the real secret and the right claims is accepted, so the
    // refusals below are caused by the one claim each changes.
    let good = sign(&base, SECRET);
    assert_eq!(
        app.gql(Some(&good), VIEWER, json!({})).await["data"]["viewer"]["id"],
        ada.id.as_str()
    );

    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(base.to_string());
    let alg_none = format!("{header_none}.{payload}.");
    let other_key = sign(&base, "another-secret-another-secret-another-secret");
    let mut expired = base.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    expired["nbf"] = json!(chrono::Utc::now().timestamp() - 600);
    let mut wrong_aud = base.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = base.clone();
    wrong_iss["iss"] = json!("evil");
    let mut not_yet = base.clone();
    not_yet["nbf"] = json!(chrono::Utc::now().timestamp() + 300);
    let mut wrong_type = base.clone();
    wrong_type["typ"] = json!("refresh");
    let cases = [
        ("alg none", alg_none),
        ("other key", other_key),
        ("expired", sign(&expired, SECRET)),
        ("wrong aud", sign(&wrong_aud, SECRET)),
        ("wrong iss", sign(&wrong_iss, SECRET)),
        ("not yet valid", sign(&not_yet, SECRET)),
        ("refresh type", sign(&wrong_type, SECRET)),
        ("refresh token as access token", ada.refresh_token.clone()),
        ("garbage", "abc.def.ghi".to_owned()),
    ];
    for (name, token) in cases {
        let (status, body, _) = app.gql_response(Some(&token), VIEWER, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
        assert_eq!(status, 401, "{name}");
        assert!(body["data"].is_null(), "{name}");
    }
    // Without any credential, viewer is UNAUTHENTICATED too.
    assert_eq!(error_code(&app.gql(None, VIEWER, json!({})).await), "UNAUTHENTICATED");
    app.stop().await;
}

#[tokio::test]
async fn log_out_everywhere_invalidates_outstanding_access_tokens() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let second = log_in(&app, "ada@example.com", PASSWORD).await;
    let second_token = second["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation { logOut(input: { everywhere: true }) { endedSessions } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["logOut"]["endedSessions"], 2, "{body}");
    for token in [&ada.access_token, &second_token] {
        assert_eq!(
            error_code(&app.gql(Some(token), VIEWER, json!({})).await),
            "UNAUTHENTICATED"
        );
    }
    // Refresh tokens of the ended sessions are dead too.
    assert_eq!(error_code(&refresh(&app, &ada.refresh_token).await), "UNAUTHENTICATED");
    // Signing in again works.
    assert!(log_in(&app, "ada@example.com", PASSWORD).await["data"]["logIn"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn log_out_ends_only_the_current_session() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let other = log_in(&app, "ada@example.com", PASSWORD).await;
    let other_token = other["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation { logOut(input: {}) { endedSessions } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["logOut"]["endedSessions"], 1, "{body}");
    assert_eq!(
        error_code(&app.gql(Some(&ada.access_token), VIEWER, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.gql(Some(&other_token), VIEWER, json!({})).await["data"]["viewer"]["name"],
        "Ada"
    );
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let first = refresh(&app, &ada.refresh_token).await;
    let rotated = first["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .expect("rotated")
        .to_owned();
    let access = first["data"]["refreshSession"]["accessToken"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_ne!(rotated, ada.refresh_token);
    assert_eq!(
        app.gql(Some(&access), VIEWER, json!({})).await["data"]["viewer"]["name"],
        "Ada"
    );

    // The old token is presented again after the reuse interval: refused, and the family is
    // revoked.
    app.app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(error_code(&refresh(&app, &ada.refresh_token).await), "UNAUTHENTICATED");
    assert_eq!(error_code(&refresh(&app, &rotated).await), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&app.gql(Some(&access), VIEWER, json!({})).await),
        "UNAUTHENTICATED"
    );
    // Only hashes are stored.
    let store = app.store().await;
    let rows = store
        .conn
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT token_hash FROM refresh_tokens",
        ))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let hash: String = row.try_get("", "token_hash").expect("hash");
        assert_ne!(hash, ada.refresh_token);
        assert_ne!(hash, rotated);
        assert_eq!(hash.len(), 64);
    }
    app.stop().await;
}

#[tokio::test]
async fn restarting_keeps_data_and_sessions() {
    let url = crate::helpers::fresh_database_url().await;
    let mut args = crate::helpers::test_args(&url);
    // No configured secret: the server generates one and must keep it across restarts.
    args.jwt_secret = None;
    let app = crate::helpers::spawn_with(args.clone()).await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    app.create_organization(&ada, "kept-org").await;
    app.stop().await;

    let app = crate::helpers::spawn_with(args).await;
    let body = app
        .gql(
            Some(&ada.access_token),
            "{ viewer { email } organization(slug: \"kept-org\") { slug } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["viewer"]["email"], "ada@example.com", "{body}");
    assert_eq!(body["data"]["organization"]["slug"], "kept-org");
    assert!(refresh(&app, &ada.refresh_token).await["data"]["refreshSession"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in_with_the_same_successor() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let (first, second) = tokio::join!(refresh(&app, &ada.refresh_token), refresh(&app, &ada.refresh_token));
    let successor = |body: &Value| {
        body["data"]["refreshSession"]["refreshToken"]
            .as_str()
            .unwrap_or_else(|| panic!("refresh failed: {body}"))
            .to_owned()
    };
    let (a, b) = (successor(&first), successor(&second));
    assert_eq!(a, b, "both tabs hold the same successor");
    for body in [&first, &second] {
        let access = body["data"]["refreshSession"]["accessToken"].as_str().expect("access");
        assert_eq!(
            app.gql(Some(access), VIEWER, json!({})).await["data"]["viewer"]["name"],
            "Ada"
        );
    }
    // The successor rotates as usual, and the first token, presented after the interval, still
    // means theft: the whole family ends.
    let next = refresh(&app, &a).await;
    assert!(next["errors"].is_null(), "{next}");
    app.app.clock.advance(chrono::Duration::seconds(6));
    assert_eq!(error_code(&refresh(&app, &ada.refresh_token).await), "UNAUTHENTICATED");
    let latest = next["data"]["refreshSession"]["refreshToken"].as_str().expect("latest");
    assert_eq!(error_code(&refresh(&app, latest).await), "UNAUTHENTICATED");
    app.stop().await;
}
