//! Bring your own identity provider: tokens of a configured issuer sign people in, checked
//! against a JWKS this test serves itself on 127.0.0.1 from keys it generates, including a
//! rotation, forged tokens and algorithm confusion.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, fresh_database_url, spawn_with, test_args};

const ISSUER: &str = "https://idp.corp.test/";
const AUDIENCE: &str = "guildhall-api";

/// A key the provider signs with, and its public half as a JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Signer {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&encoding, alg).expect("a JWK")).expect("JSON");
        jwk["kid"] = json!(kid);
        Signer {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    fn ed25519(kid: &str) -> Signer {
        // PKCS#8 v1 wrapping of a 32-byte Ed25519 seed (RFC 8410).
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
        ];
        der.extend_from_slice(&rand::random::<[u8; 32]>());
        Signer::new(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    }

    fn es256(kid: &str) -> Signer {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).expect("a P-256 scalar");
        let der = secret.to_pkcs8_der().expect("PKCS#8");
        Signer::new(kid, Algorithm::ES256, EncodingKey::from_ec_der(der.as_bytes()))
    }

    fn rs256(kid: &str) -> Signer {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
        let der = key.to_pkcs1_der().expect("PKCS#1");
        Signer::new(kid, Algorithm::RS256, EncodingKey::from_rsa_der(der.as_bytes()))
    }

    /// A token of this key with `claims` over the defaults (issuer, audience, an hour to live).
    fn token(&self, app: &TestApp, claims: Value) -> String {
        self.token_with_kid(app, &self.kid, claims)
    }

    fn token_with_kid(&self, app: &TestApp, kid: &str, claims: Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims_of(app, claims), &self.encoding).expect("signed")
    }
}

fn claims_of(app: &TestApp, claims: Value) -> Value {
    let now = app.app.now().timestamp();
    let mut all = json!({ "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600 });
    for (k, v) in claims.as_object().expect("claims").clone() {
        all[k] = v;
    }
    all
}

/// The provider's JWKS endpoint, served by the test on 127.0.0.1, counting its fetches.
#[derive(Clone)]
struct Jwks {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

impl Jwks {
    async fn serve(keys: Vec<Value>) -> Jwks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("address")
        );
        let jwks = Jwks {
            keys: Arc::new(Mutex::new(keys)),
            fetches: Arc::new(AtomicUsize::new(0)),
            url,
        };
        let served = jwks.clone();
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let served = served.clone();
                async move {
                    served.fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = served.keys.lock().expect("keys").clone();
                    axum::Json(json!({ "keys": keys }))
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        jwks
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.keys.lock().expect("keys") = keys;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn spawn_with_provider(jwks: &Jwks, local_accounts: bool) -> TestApp {
    spawn_linking(jwks, local_accounts, false).await
}

async fn spawn_linking(jwks: &Jwks, local_accounts: bool, link_existing: bool) -> TestApp {
    let mut args = test_args(&fresh_database_url().await);
    args.oidc_link_existing_accounts = link_existing;
    args.oidc_issuer = Some(ISSUER.to_owned());
    args.oidc_audience = Some(AUDIENCE.to_owned());
    args.oidc_jwks = Some(jwks.url.clone());
    args.local_accounts = local_accounts;
    spawn_with(args).await
}

const VIEWER: &str = "{ viewer { id email emailVerified name } }";

async fn viewer(app: &TestApp, token: &str) -> Value {
    app.gql(Some(token), VIEWER, json!({})).await
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn provider_tokens_sign_people_in_linked_by_issuer_and_subject_never_by_an_unvouched_address() {
    let (rsa, ec, ed) = (Signer::rs256("rsa-1"), Signer::es256("ec-1"), Signer::ed25519("ed-1"));
    let jwks = Jwks::serve(vec![rsa.jwk.clone(), ec.jwk.clone(), ed.jwk.clone()]).await;
    let app = spawn_with_provider(&jwks, true).await;
    assert_eq!(jwks.fetches(), 1, "read once at start");

    // Each algorithm signs someone in; the account is made on first sight, found after.
    let mut ids = Vec::new();
    for (signer, who) in [(&rsa, "rs"), (&ec, "es"), (&ed, "ed")] {
        let claims = json!({ "sub": format!("sub-{who}"), "email": format!("{who}@corp.test"), "email_verified": true, "name": who });
        let first = viewer(&app, &signer.token(&app, claims.clone())).await;
        assert!(first["errors"].is_null(), "{who}: {first}");
        assert_eq!(first["data"]["viewer"]["email"], format!("{who}@corp.test"));
        assert_eq!(first["data"]["viewer"]["emailVerified"], true);
        assert_eq!(first["data"]["viewer"]["name"], who);
        let again = viewer(&app, &signer.token(&app, claims)).await;
        assert_eq!(again["data"]["viewer"]["id"], first["data"]["viewer"]["id"]);
        ids.push(first["data"]["viewer"]["id"].clone());
    }
    assert_eq!(app.count_rows("external_identities").await, 3);
    assert_eq!(app.count_rows("users").await, 3);
    assert_eq!(jwks.fetches(), 1, "known keys are never fetched per request");
    let linked = app
        .count_rows("audit_events WHERE action = 'account.link_identity'")
        .await;
    assert_eq!(linked, 3);

    // An address the provider vouches for does not reach an existing account unless the
    // provider is set to link them (it would trust the provider with that account).
    app.sign_up("ada@corp.test", "Ada").await;
    let vouched = viewer(
        &app,
        &ed.token(
            &app,
            json!({ "sub": "ada-at-idp", "email": "ADA@corp.test", "email_verified": true }),
        ),
    )
    .await;
    assert_eq!(error_code(&vouched), "CONFLICT", "{vouched}");
    assert_eq!(app.count_rows("external_identities").await, 3);

    // One it does not vouch for links to nothing: a provider's user claiming Bob's address
    // gets an account of their own, without any address.
    let bob = app.sign_up("bob@corp.test", "Bob").await;
    let unvouched = viewer(
        &app,
        &ed.token(
            &app,
            json!({ "sub": "mallory", "email": "bob@corp.test", "email_verified": false }),
        ),
    )
    .await;
    assert!(unvouched["errors"].is_null(), "{unvouched}");
    assert_ne!(unvouched["data"]["viewer"]["id"], json!(bob.id));
    assert_eq!(unvouched["data"]["viewer"]["email"], Value::Null);
    assert_eq!(unvouched["data"]["viewer"]["emailVerified"], false);
    // Nor can they take Bob's organization invitations: they have no address to match.
    let created = app
        .gql(
            Some(&ed.token(&app, json!({ "sub": "mallory" }))),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": "Mallory", "slug": "mallory" } }),
        )
        .await;
    assert_eq!(error_code(&created), "EMAIL_NOT_VERIFIED", "{created}");

    // An account that signed up with an address and never proved it gives the address up to
    // the person the provider vouches for (it may be a squatter's).
    app.sign_up_unverified("cara@corp.test", "Squatter").await;
    let cara = viewer(
        &app,
        &rsa.token(
            &app,
            json!({ "sub": "cara-at-idp", "email": "cara@corp.test", "email_verified": "true" }),
        ),
    )
    .await;
    assert_eq!(cara["data"]["viewer"]["email"], "cara@corp.test", "{cara}");
    assert_eq!(cara["data"]["viewer"]["emailVerified"], true);
    let holders = app.count_rows("users WHERE email_canonical = 'cara@corp.test'").await;
    assert_eq!(holders, 1);
    let squatter = app.count_rows("users WHERE name = 'Squatter' AND email IS NULL").await;
    assert_eq!(squatter, 1);
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_forged_or_confused_tokens_are_refused() {
    let (a, b) = (Signer::ed25519("key-a"), Signer::es256("key-b"));
    let jwks = Jwks::serve(vec![a.jwk.clone()]).await;
    let app = spawn_with_provider(&jwks, true).await;
    let person = json!({ "sub": "dana", "email": "dana@corp.test", "email_verified": true });
    let ok = viewer(&app, &a.token(&app, person.clone())).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let dana = ok["data"]["viewer"]["id"].clone();

    // A token signed by another key under key A's id is a forgery.
    let forger = Signer::ed25519("key-a");
    let forged = viewer(&app, &forger.token(&app, person.clone())).await;
    assert_eq!(error_code(&forged), "UNAUTHENTICATED", "{forged}");

    // A made-up key id right after the start's fetch fetches nothing; later it makes one
    // fetch, and a stream of them within the refresh interval none more.
    let fetched = jwks.fetches();
    let early = viewer(&app, &a.token_with_kid(&app, "made-up", person.clone())).await;
    assert_eq!(error_code(&early), "UNAUTHENTICATED", "{early}");
    assert_eq!(jwks.fetches(), fetched);
    app.app.clock.advance(chrono::Duration::seconds(31));
    for n in 0..20 {
        let unknown = viewer(&app, &a.token_with_kid(&app, &format!("made-up-{n}"), person.clone())).await;
        assert_eq!(error_code(&unknown), "UNAUTHENTICATED", "{unknown}");
    }
    assert_eq!(jwks.fetches(), fetched + 1);

    // The provider rotates to key B. Once the interval has passed, B's first token fetches the
    // new set: Dana signs in with it, and key A (withdrawn) counts no more.
    jwks.publish(vec![b.jwk.clone()]);
    app.app.clock.advance(chrono::Duration::seconds(31));
    let rotated = viewer(&app, &b.token(&app, person.clone())).await;
    assert!(rotated["errors"].is_null(), "{rotated}");
    assert_eq!(
        rotated["data"]["viewer"]["id"], dana,
        "the same (issuer, subject), the same account"
    );
    assert_eq!(jwks.fetches(), fetched + 2);
    let withdrawn = viewer(&app, &a.token(&app, person.clone())).await;
    assert_eq!(error_code(&withdrawn), "UNAUTHENTICATED", "{withdrawn}");

    // Algorithm confusion: HS256 keyed with the public key's own bytes, or the whole JWKS.
    for secret in [
        serde_json::to_vec(&b.jwk).expect("JSON"),
        serde_json::to_vec(&json!({ "keys": [b.jwk.clone()] })).expect("JSON"),
        b.jwk["x"].as_str().expect("x").as_bytes().to_vec(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-b".to_owned());
        let hs = jsonwebtoken::encode(
            &header,
            &claims_of(&app, person.clone()),
            &EncodingKey::from_secret(&secret),
        )
        .expect("signed");
        let refused = viewer(&app, &hs).await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    }
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"key-b"}"#),
        b64(&serde_json::to_vec(&claims_of(&app, person.clone())).expect("JSON"))
    );
    assert_eq!(error_code(&viewer(&app, &none).await), "UNAUTHENTICATED");
    // An Ed25519 signature under the id of the P-256 key: the algorithm does not fit the key.
    let mismatched = Signer::ed25519("key-b");
    assert_eq!(
        error_code(&viewer(&app, &mismatched.token(&app, person.clone())).await),
        "UNAUTHENTICATED"
    );
    // Another audience, another issuer, an expired token: all refused.
    let mut wrong_audience = person.clone();
    wrong_audience["aud"] = json!("another-api");
    let mut wrong_issuer = person.clone();
    wrong_issuer["iss"] = json!("https://evil.test/");
    let mut expired = person.clone();
    expired["exp"] = json!(app.app.now().timestamp() - 120);
    for claims in [wrong_audience, wrong_issuer, expired] {
        let refused = viewer(&app, &b.token(&app, claims)).await;
        assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    }
    assert_eq!(app.count_rows("external_identities").await, 1);
}

#[tokio::test]
async fn with_local_accounts_off_only_the_provider_signs_in_and_its_second_factor_counts() {
    let key = Signer::ed25519("k1");
    let jwks = Jwks::serve(vec![key.jwk.clone()]).await;
    // Switching local accounts off without a provider is a configuration error.
    let mut alone = test_args(&fresh_database_url().await);
    alone.local_accounts = false;
    assert!(guildhall::server::build(&alone).await.is_err());

    let app = spawn_with_provider(&jwks, false).await;
    let sign_up = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { email } }",
            json!({ "i": { "email": "erin@corp.test", "password": crate::helpers::PASSWORD, "name": "Erin" } }),
        )
        .await;
    assert_eq!(error_code(&sign_up), "FORBIDDEN", "{sign_up}");
    let log_in = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "erin@corp.test", "password": crate::helpers::PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&log_in), "FORBIDDEN", "{log_in}");
    assert_eq!(app.count_rows("users").await, 0);

    // The owner signs in through the provider with a second factor and requires one here.
    let owner = |app: &TestApp, amr: Value| {
        key.token(
            app,
            json!({ "sub": "erin", "email": "erin@corp.test", "email_verified": true, "amr": amr }),
        )
    };
    let with_mfa = owner(&app, json!(["pwd", "mfa"]));
    let created = app
        .gql(
            Some(&with_mfa),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": "Corp", "slug": "corp" } }),
        )
        .await;
    let organization = created["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let required = app
        .gql(
            Some(&with_mfa),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { requireTwoFactor } } }",
            json!({ "i": { "organizationId": organization, "requireTwoFactor": true } }),
        )
        .await;
    assert_eq!(
        required["data"]["updateOrganization"]["organization"]["requireTwoFactor"], true,
        "{required}"
    );
    // Signed in with a password alone at the provider, the same person is held back.
    let members = "{ organization(slug: \"corp\") { members(first: 5) { totalCount } } }";
    let password_only = app.gql(Some(&owner(&app, json!(["pwd"]))), members, json!({})).await;
    assert_eq!(error_code(&password_only), "TWO_FACTOR_REQUIRED", "{password_only}");
    let second_factor = app.gql(Some(&with_mfa), members, json!({})).await;
    assert_eq!(
        second_factor["data"]["organization"]["members"]["totalCount"], 1,
        "{second_factor}"
    );
}

#[tokio::test]
async fn a_provider_set_to_link_reaches_the_account_that_proved_the_address_once() {
    let key = Signer::ed25519("k1");
    let jwks = Jwks::serve(vec![key.jwk.clone()]).await;
    let app = spawn_linking(&jwks, true, true).await;
    let ada = app.sign_up("ada@corp.test", "Ada").await;
    let token = |sub: &str| {
        key.token(
            &app,
            json!({ "sub": sub, "email": "ADA@corp.test", "email_verified": true }),
        )
    };
    let linked = viewer(&app, &token("ada-at-idp")).await;
    assert_eq!(linked["data"]["viewer"]["id"], json!(ada.id), "{linked}");
    // The address handed on to another person at the provider reaches nothing of Ada's.
    let successor = viewer(&app, &token("new-hire")).await;
    assert_eq!(error_code(&successor), "CONFLICT", "{successor}");
    assert_eq!(app.count_rows("external_identities").await, 1);
    // A provider's token mints no Guildhall credential that would outlive it.
    let minted = app
        .gql(
            Some(&token("ada-at-idp")),
            "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
            json!({ "i": { "name": "laptop" } }),
        )
        .await;
    assert_eq!(error_code(&minted), "FORBIDDEN", "{minted}");
    assert_eq!(app.count_rows("api_tokens").await, 0);
}
