//! Bring your own identity provider: a bearer JWT signed by an OpenID Connect issuer the
//! operator configured authenticates a Guildhall account, created on first sight and linked by
//! the pair (issuer, subject) — never by an address the provider does not vouch for.
//!
//! Only asymmetric signatures count (RS*, PS*, ES256/ES384, EdDSA), each checked against a key
//! of the issuer's JWKS whose type and curve fit the algorithm: `none` and HS256 are refused
//! whatever the token says, so no token signed with a public key as an HMAC secret passes. The
//! JWKS is read when the server starts and kept; a token naming a key not in it (a rotation)
//! makes one fetch, shared by every request waiting for it and at most one per
//! `min_refresh`, so a stream of made-up key ids costs the provider nothing; keys older than
//! `max_age` are fetched again, so a key the provider withdrew stops counting.
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::store::entities::{external_identities, users};

use super::audit::{self, Actor, Event};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::validate::Email;
use super::{App, Principal, RequestMeta, new_id};

/// Clock difference tolerated between the provider and this server.
const LEEWAY_SECONDS: i64 = 30;
/// Longest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Whether the provider's word on an address is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTrust {
    /// The address counts as verified when the token says `email_verified: true`.
    Claim,
    /// The provider only ever issues addresses it verified (a company directory).
    Always,
    /// Addresses from this provider are never taken: such accounts have none in Guildhall.
    Never,
}

impl FromStr for EmailTrust {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "claim" => Ok(EmailTrust::Claim),
            "always" => Ok(EmailTrust::Always),
            "never" => Ok(EmailTrust::Never),
            other => Err(format!("email trust must be claim, always or never, not `{other}`")),
        }
    }
}

/// One configured issuer.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// The `aud` a token must name to be meant for Guildhall.
    pub audience: String,
    /// A JWKS file path, or an `https://` URL (`http://` only on the loopback interface).
    pub jwks: String,
    /// The claim holding the person's address.
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_email_trust")]
    pub email_verified: EmailTrust,
    /// Whether a person whose vouched address belongs to an existing Guildhall account signs
    /// in as that account (for moving password accounts to the provider). Off, such a sign-in
    /// answers CONFLICT: linking trusts the provider with every account holding its addresses.
    #[serde(default)]
    pub link_existing_accounts: bool,
}

fn default_email_claim() -> String {
    "email".to_owned()
}

fn default_email_trust() -> EmailTrust {
    EmailTrust::Claim
}

/// A verification key and the algorithms it may verify.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

#[derive(Clone, Default)]
struct Keys {
    by_id: HashMap<String, Key>,
    /// Keys without a `kid`: usable only by tokens without one, and only when alone.
    unnamed: Vec<Key>,
    fetched_at: Option<DateTime<Utc>>,
}

impl Keys {
    fn find(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.by_id.get(kid),
            None => match (self.by_id.len(), self.unnamed.len()) {
                (0, 1) => self.unnamed.first(),
                (1, 0) => self.by_id.values().next(),
                _ => None,
            },
        }
    }
}

struct Provider {
    config: ProviderConfig,
    keys: RwLock<Arc<Keys>>,
    /// Held while fetching; holds when the last fetch was tried.
    refresh: tokio::sync::Mutex<Option<DateTime<Utc>>>,
}

/// Every configured issuer, with its keys.
pub struct Providers {
    providers: Vec<Provider>,
    min_refresh: Duration,
    max_age: Duration,
    client: reqwest::Client,
}

/// Algorithms an external token may be signed with: asymmetric ones only.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn invalid(why: &str) -> DomainError {
    DomainError::Unauthenticated(format!("the identity provider's token is not accepted: {why}"))
}

/// The key of a JWK, with the algorithms its type and curve allow (narrowed to its `alg` when
/// it names one); `None` for keys that cannot verify signatures here (symmetric, encryption).
fn key_of(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let fitting: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        // Shared secrets never verify a provider's token.
        _ => return None,
    };
    let algorithms = match &jwk.common.key_algorithm {
        Some(named) => {
            let named = Algorithm::from_str(&named.to_string()).ok()?;
            if !fitting.contains(&named) {
                return None;
            }
            vec![named]
        }
        None => fitting,
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { decoding, algorithms })
}

/// The keys of a JWKS document; keys it cannot use are left out, a document that is not a
/// JWKS is an error.
fn parse_jwks(text: &[u8], at: DateTime<Utc>) -> Result<Keys, String> {
    let document: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let listed = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWKS has a `keys` array")?;
    let mut keys = Keys {
        fetched_at: Some(at),
        ..Keys::default()
    };
    for entry in listed {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        let Some(key) = key_of(&jwk) else { continue };
        match jwk.common.key_id {
            Some(kid) => {
                keys.by_id.insert(kid, key);
            }
            None => keys.unnamed.push(key),
        }
    }
    Ok(keys)
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))
    } else {
        host.split(':').next()
    }
    .unwrap_or_default();
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Claims read before the signature is checked, only to pick the issuer whose keys check it.
#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

/// What a verified external token says about its person.
#[derive(Debug)]
pub struct ExternalPerson {
    pub issuer: String,
    pub subject: String,
    /// The address, when the provider vouches for it.
    pub verified_email: Option<Email>,
    pub name: String,
    /// The provider's setting: whether a vouched address links an existing account.
    pub link_existing_accounts: bool,
    /// The provider says a second factor was used (`amr` holds `mfa`, `otp` or `hwk`).
    pub second_factor: bool,
}

impl Providers {
    /// No providers: only Guildhall's own sign-in.
    pub fn none() -> Providers {
        Providers {
            providers: Vec::new(),
            min_refresh: Duration::seconds(30),
            max_age: Duration::hours(1),
            client: reqwest::Client::new(),
        }
    }

    /// Checks the configuration and reads every JWKS. A file that cannot be read is an error;
    /// a URL that does not answer now is tried again when a token needs it.
    pub async fn start(
        configs: Vec<ProviderConfig>,
        min_refresh: Duration,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> Result<Providers, String> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the HTTP client for JWKS: {e}"))?;
        let mut providers: Vec<Provider> = Vec::new();
        for config in configs {
            if config.issuer.trim().is_empty() || config.issuer == super::tokens::ISSUER {
                return Err(format!("`{}` cannot be an external issuer", config.issuer));
            }
            if config.audience.trim().is_empty() {
                return Err(format!("issuer {}: an audience is required", config.issuer));
            }
            if config.email_claim.trim().is_empty() {
                return Err(format!("issuer {}: the email claim cannot be empty", config.issuer));
            }
            if providers.iter().any(|p| p.config.issuer == config.issuer) {
                return Err(format!("issuer {} is configured twice", config.issuer));
            }
            if config.jwks.starts_with("http://") && !is_loopback_url(&config.jwks) {
                return Err(format!(
                    "issuer {}: a JWKS URL must be https:// (http:// only on the loopback interface)",
                    config.issuer
                ));
            }
            providers.push(Provider {
                config,
                keys: RwLock::new(Arc::new(Keys::default())),
                refresh: tokio::sync::Mutex::new(None),
            });
        }
        let providers = Providers {
            providers,
            min_refresh,
            max_age,
            client,
        };
        for provider in &providers.providers {
            match providers.fetch(provider, now).await {
                Ok(keys) => provider.store(keys),
                Err(e) if is_url(&provider.config.jwks) => {
                    tracing::warn!(issuer = %provider.config.issuer, error = %e, "JWKS not read at start; tried again when needed");
                }
                Err(e) => return Err(format!("issuer {}: {e}", provider.config.issuer)),
            }
            *provider.refresh.lock().await = Some(now);
        }
        Ok(providers)
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The configured issuer a bearer token claims to come from, if any (nothing is trusted
    /// yet: the signature is checked with that issuer's keys).
    fn provider_of(&self, bearer: &str) -> Option<&Provider> {
        if self.providers.is_empty() {
            return None;
        }
        let claims: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(bearer).ok()?;
        let iss = claims.iss?;
        self.providers.iter().find(|p| p.config.issuer == iss)
    }

    async fn fetch(&self, provider: &Provider, now: DateTime<Utc>) -> Result<Keys, String> {
        let source = &provider.config.jwks;
        let bytes = if is_url(source) {
            let response = self
                .client
                .get(source)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| format!("fetching the JWKS: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("the JWKS URL answered {}", response.status()));
            }
            let too_large = || "the JWKS is larger than 256 KiB".to_owned();
            if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
                return Err(too_large());
            }
            let mut response = response;
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the JWKS: {e}"))? {
                if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            bytes
        } else {
            tokio::fs::read(source)
                .await
                .map_err(|e| format!("reading the JWKS file {source}: {e}"))?
        };
        parse_jwks(&bytes, now)
    }

    /// Fetches the issuer's keys again unless a fetch was tried within `min_refresh` (then
    /// the keys are whatever that fetch left). Concurrent callers share one fetch.
    async fn refresh(&self, provider: &Provider, now: DateTime<Utc>) {
        let mut tried = provider.refresh.lock().await;
        if tried.is_some_and(|at| now - at < self.min_refresh) {
            return;
        }
        *tried = Some(now);
        match self.fetch(provider, now).await {
            Ok(keys) => provider.store(keys),
            // The keys held stay in use: a provider briefly down signs nobody out.
            Err(e) => tracing::warn!(issuer = %provider.config.issuer, error = %e, "JWKS refresh failed"),
        }
    }

    /// The key a token names: from the keys held while they are fresh, else after a refresh.
    async fn key(&self, provider: &Provider, kid: Option<&str>, now: DateTime<Utc>) -> Option<Key> {
        let held = provider.current();
        let fresh = held.fetched_at.is_some_and(|at| now - at < self.max_age);
        if fresh && let Some(key) = held.find(kid) {
            return Some(key.clone());
        }
        self.refresh(provider, now).await;
        provider.current().find(kid).cloned()
    }

    /// Verifies a bearer token of a configured issuer; `None` when it names none (it may be one
    /// of Guildhall's own).
    pub async fn verify(&self, bearer: &str, now: DateTime<Utc>) -> Option<DomainResult<ExternalPerson>> {
        let provider = self.provider_of(bearer)?;
        Some(self.verify_with(provider, bearer, now).await)
    }

    async fn verify_with(&self, provider: &Provider, bearer: &str, now: DateTime<Utc>) -> DomainResult<ExternalPerson> {
        let header = jsonwebtoken::decode_header(bearer).map_err(|_| invalid("its header cannot be read"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(invalid("it is not signed with an asymmetric algorithm"));
        }
        let key = self
            .key(provider, header.kid.as_deref(), now)
            .await
            .ok_or_else(|| invalid("no key of the provider has its `kid`"))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(invalid("its algorithm does not fit the key it names"));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&provider.config.issuer]);
        validation.set_audience(&[&provider.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry and not-before are judged against the service's clock below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(bearer, &key.decoding, &validation)
            .map_err(|_| invalid("its signature, issuer or audience does not check out"))?
            .claims;
        let now_unix = now.timestamp();
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        if number("exp").is_none_or(|exp| exp < now_unix - LEEWAY_SECONDS) {
            return Err(invalid("it has expired"));
        }
        if number("nbf").is_some_and(|nbf| nbf > now_unix + LEEWAY_SECONDS) {
            return Err(invalid("it is not valid yet"));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| invalid("its `sub` is missing or too long"))?
            .to_owned();
        let email = claims
            .get(&provider.config.email_claim)
            .and_then(Value::as_str)
            .and_then(|raw| Email::parse("email", raw).ok());
        let vouched = match provider.config.email_verified {
            EmailTrust::Always => true,
            EmailTrust::Never => false,
            // Some providers send the flag as a string.
            EmailTrust::Claim => {
                matches!(claims.get("email_verified"), Some(Value::Bool(true)))
                    || claims.get("email_verified").and_then(Value::as_str) == Some("true")
            }
        };
        let verified_email = email.filter(|_| vouched);
        let name = ["name", "preferred_username", "nickname"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(|n| n.trim().chars().take(100).collect::<String>())
            .filter(|n| !n.is_empty())
            .or_else(|| verified_email.as_ref().map(|e| e.display().to_owned()))
            .unwrap_or_else(|| "Member".to_owned());
        let second_factor = claims
            .get("amr")
            .and_then(Value::as_array)
            .is_some_and(|amr| amr.iter().any(|m| matches!(m.as_str(), Some("mfa" | "otp" | "hwk"))));
        Ok(ExternalPerson {
            issuer: provider.config.issuer.clone(),
            subject,
            verified_email,
            name,
            link_existing_accounts: provider.config.link_existing_accounts,
            second_factor,
        })
    }
}

impl Provider {
    fn current(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, keys: Keys) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }
}

fn is_url(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

/// The account linked to an external identity, if there is one.
async fn linked<C: ConnectionTrait>(conn: &C, issuer: &str, subject: &str) -> DomainResult<Option<users::Model>> {
    let identity = Query::select()
        .column(external_identities::Column::UserId)
        .from(external_identities::Entity)
        .and_where(Expr::col(external_identities::Column::Issuer).eq(issuer))
        .and_where(Expr::col(external_identities::Column::Subject).eq(subject))
        .to_owned();
    Ok(users::Entity::find()
        .filter(users::Column::Id.in_subquery(identity))
        .one(conn)
        .await?)
}

/// The caller a provider's token names: its linked account, or one made for it now.
pub async fn authenticate(app: &App, bearer: &str) -> Option<DomainResult<Principal>> {
    let person = match app.identity.verify(bearer, app.now()).await? {
        Ok(person) => person,
        Err(e) => return Some(Err(e)),
    };
    Some(principal_for(app, person).await)
}

async fn principal_for(app: &App, person: ExternalPerson) -> DomainResult<Principal> {
    let user = match linked(&app.store.conn, &person.issuer, &person.subject).await? {
        Some(user) => user,
        None => match link(app, &person).await {
            Ok(user) => user,
            // Another request may have linked the same person first; else the conflict stands.
            Err(e) if matches!(e, DomainError::Conflict { .. }) => {
                linked(&app.store.conn, &person.issuer, &person.subject)
                    .await?
                    .ok_or(e)?
            }
            Err(e) => return Err(e),
        },
    };
    Ok(Principal {
        user,
        session_id: None,
        token: None,
        external: Some(super::ExternalSignIn {
            issuer: person.issuer,
            second_factor: person.second_factor,
        }),
    })
}

/// Links a person seen for the first time: to the account holding the address the provider
/// vouches for when that account proved it too, else to a new account. An account that never
/// proved the address gives it up to the person who did (it could be a squatter's).
async fn link(app: &App, person: &ExternalPerson) -> DomainResult<users::Model> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    if let Some(user) = linked(&tx, &person.issuer, &person.subject).await? {
        return Ok(user);
    }
    let holder = match &person.verified_email {
        Some(email) => {
            users::Entity::find()
                .filter(users::Column::EmailCanonical.eq(email.canonical()))
                .one(&tx)
                .await?
        }
        None => None,
    };
    let (user, created) = match holder {
        Some(user) if user.kind == "HUMAN" && user.email_verified_at.is_some() => {
            if !person.link_existing_accounts {
                return Err(DomainError::conflict(
                    Some("email"),
                    "an account with this address exists; sign in to it with its password (this provider is not set to link existing accounts)",
                ));
            }
            // An address handed on at the provider (a new employee given a leaver's address)
            // never reaches the account another of its people already signs in as.
            let already = external_identities::Entity::find()
                .filter(external_identities::Column::UserId.eq(user.id))
                .filter(external_identities::Column::Issuer.eq(person.issuer.clone()))
                .one(&tx)
                .await?;
            if already.is_some() {
                return Err(DomainError::conflict(
                    Some("email"),
                    "the account with this address is linked to another person at this provider",
                ));
            }
            (user, false)
        }
        unproven => {
            if let Some(squatter) = unproven {
                let released = users::Entity::update_many()
                    .col_expr(users::Column::Email, Expr::value(Option::<String>::None))
                    .col_expr(users::Column::EmailCanonical, Expr::value(Option::<String>::None))
                    .col_expr(users::Column::UpdatedAt, Expr::value(now))
                    .filter(users::Column::Id.eq(squatter.id))
                    // Proved meanwhile: then the address stays where it is.
                    .filter(users::Column::EmailVerifiedAt.is_null())
                    .exec(&tx)
                    .await?;
                if released.rows_affected == 0 {
                    return Err(DomainError::conflict(
                        Some("email"),
                        "the address was just verified by its account",
                    ));
                }
                super::self_service::void_links(&tx, squatter.id, now, None).await?;
            }
            let email = person.verified_email.as_ref();
            let user = users::ActiveModel {
                id: Set(new_id()),
                kind: Set("HUMAN".to_owned()),
                email: Set(email.map(|e| e.display().to_owned())),
                email_canonical: Set(email.map(|e| e.canonical().to_owned())),
                name: Set(person.name.clone()),
                password_hash: Set(None),
                token_version: Set(0),
                service_organization_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                email_verified_at: Set(email.map(|_| now)),
                totp_secret: Set(None),
                totp_enabled_at: Set(None),
                totp_last_step: Set(None),
            }
            .insert(&tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::conflict(None, "this person was just linked")
                } else {
                    e.into()
                }
            })?;
            (user, true)
        }
    };
    external_identities::ActiveModel {
        id: Set(new_id()),
        issuer: Set(person.issuer.clone()),
        subject: Set(person.subject.clone()),
        user_id: Set(user.id),
        created_at: Set(now),
    }
    .insert(&tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            DomainError::conflict(None, "this person was just linked")
        } else {
            e.into()
        }
    })?;
    audit::record(
        &tx,
        &RequestMeta::default(),
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(user.id),
                token_id: None,
            },
            action: "account.link_identity",
            target: Some(("User", user.id)),
            details: json!({ "issuer": person.issuer, "newAccount": created }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Whether a user signs in through a provider (and may have no password).
pub async fn has_external_identity<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> DomainResult<bool> {
    Ok(external_identities::Entity::find()
        .filter(external_identities::Column::UserId.eq(user_id))
        .one(conn)
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_serve_a_jwks_over_plain_http() {
        assert!(is_loopback_url("http://127.0.0.1:9000/jwks.json"));
        assert!(is_loopback_url("http://localhost/jwks"));
        assert!(is_loopback_url("http://[::1]:8080/jwks"));
        assert!(!is_loopback_url("http://idp.example/jwks"));
        assert!(!is_loopback_url("http://127.0.0.1.idp.example/jwks"));
        assert!(!is_loopback_url("http://user@evil.example/jwks"));
    }

    #[test]
    fn shared_secrets_and_encryption_keys_in_a_jwks_verify_nothing() {
        let keys = parse_jwks(
            br#"{"keys": [
                {"kty": "oct", "kid": "s", "k": "c2VjcmV0"},
                {"kty": "OKP", "kid": "e", "crv": "Ed25519", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                {"kty": "OKP", "kid": "wrong-alg", "crv": "Ed25519", "alg": "RS256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                {"kty": "OKP", "kid": "ok", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                {"kty": "nonsense"}
            ]}"#,
            Utc::now(),
        )
        .expect("a JWKS");
        assert_eq!(keys.by_id.keys().collect::<Vec<_>>(), vec!["ok"]);
        assert_eq!(keys.by_id["ok"].algorithms, vec![Algorithm::EdDSA]);
        assert!(parse_jwks(b"{}", Utc::now()).is_err());
    }
}
