//! Two-factor sign-in with time-based one-time passwords (RFC 6238 over RFC 4226: HMAC-SHA1,
//! 30-second steps, 6 digits), as authenticator apps implement them.
//!
//! Enrolment stores a new secret and hands it out once, with an `otpauth://` URI for a QR code;
//! it counts only once a first code confirms it, which also hands out ten single-use recovery
//! codes (stored as SHA-256). From then on `logIn` with the right password answers
//! `TWO_FACTOR_REQUIRED` with a short-lived challenge instead of credentials, and
//! `completeLogIn(challenge, code)` finishes the sign-in with a current code or a recovery code.
//! A code is accepted one step either side of now, and never twice (the last accepted step is
//! kept); a challenge takes five wrong codes, then it is spent. API tokens and service accounts
//! never sign in, so nothing here concerns them.
use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use sha1::Sha1;
use uuid::Uuid;

use crate::store::entities::{login_challenges, recovery_codes, sessions, users};

use super::accounts::{self, Credentials};
use super::audit::{self, Actor, Event};
use super::error::{DomainError, DomainResult};
use super::{App, Principal, RequestMeta, new_id, rate_limit, secrets};

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Recovery codes handed out at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// How long a sign-in challenge waits for its code.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
/// Wrong codes one challenge takes before it is spent.
pub const MAX_ATTEMPTS: i32 = 5;
/// Codes one account may be given in an hour, across challenges (a right one is given back).
pub const CODES_PER_USER: u64 = 10;

const CHALLENGE_PREFIX: &str = "ghc_";

/// The HOTP value (RFC 4226) of `secret` at `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:0width$}", binary % 10u32.pow(digits), width = digits as usize)
}

/// The TOTP code (RFC 6238) of `secret` at a Unix time.
pub fn totp_at(secret: &[u8], unix: i64, digits: u32) -> String {
    hotp(secret, unix.div_euclid(STEP) as u64, digits)
}

/// The step a code matches at `now` (one step either side), if any; compared in constant time.
fn matching_step(secret: &[u8], code: &str, now: DateTime<Utc>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.timestamp().div_euclid(STEP);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        let expected = hotp(secret, step as u64, DIGITS);
        let same = expected
            .bytes()
            .zip(code.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn decode_secret(stored: &str) -> DomainResult<Vec<u8>> {
    BASE32_NOPAD
        .decode(stored.as_bytes())
        .map_err(|_| DomainError::Internal("a stored TOTP secret is not base32".to_owned()))
}

fn wrong_code() -> DomainError {
    DomainError::bad_input("code", "the code is not right (or was used already)")
}

/// What enrolment hands out, once.
pub struct Enrolment {
    /// The secret, base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/…`, for a QR code.
    pub uri: String,
}

/// Starts (or restarts) enrolment after checking the password: a new secret, not yet in force.
/// CONFLICT while two-factor sign-in is on.
pub async fn start_enrolment(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    password: String,
) -> DomainResult<Enrolment> {
    principal.require_session("setting up two-factor sign-in")?;
    super::self_service::require_password(app, principal, password).await?;
    let mut bytes = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let secret = BASE32_NOPAD.encode(&bytes);
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let user = users::Entity::find_by_id(principal.user.id)
        .one(&tx)
        .await?
        .ok_or_else(DomainError::unauthenticated)?;
    if user.totp_enabled_at.is_some() {
        return Err(DomainError::conflict(
            None,
            "two-factor sign-in is on already; turn it off first",
        ));
    }
    users::Entity::update_many()
        .col_expr(users::Column::TotpSecret, Expr::value(secret.clone()))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .exec(&tx)
        .await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.two_factor_start",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    let label = user.email.unwrap_or_else(|| user.name.clone());
    let uri = format!(
        "otpauth://totp/Guildhall:{label}?secret={secret}&issuer=Guildhall&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        label = label.replace(['?', '&', '#', ' ', '/'], "_")
    );
    Ok(Enrolment { secret, uri })
}

fn actor(principal: &Principal) -> Actor {
    Actor {
        user_id: Some(principal.user.id),
        token_id: None,
    }
}

/// Turns two-factor sign-in on with a first code from the app: returns the recovery codes (shown
/// once, stored as SHA-256).
pub async fn confirm_enrolment(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    code: &str,
) -> DomainResult<Vec<String>> {
    principal.require_session("setting up two-factor sign-in")?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let user = users::Entity::find_by_id(principal.user.id)
        .one(&tx)
        .await?
        .ok_or_else(DomainError::unauthenticated)?;
    if user.totp_enabled_at.is_some() {
        return Err(DomainError::conflict(None, "two-factor sign-in is on already"));
    }
    let stored = user
        .totp_secret
        .as_deref()
        .ok_or_else(|| DomainError::bad_input("code", "start the set-up first (`startTwoFactorEnrollment`)"))?;
    let step = matching_step(&decode_secret(stored)?, code, now).ok_or_else(wrong_code)?;
    // Only the secret the code was checked against, and only once.
    let enabled = users::Entity::update_many()
        .col_expr(users::Column::TotpEnabledAt, Expr::value(now))
        .col_expr(users::Column::TotpLastStep, Expr::value(step))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::TotpEnabledAt.is_null())
        .filter(users::Column::TotpSecret.eq(stored.to_owned()))
        .exec(&tx)
        .await?;
    if enabled.rows_affected != 1 {
        return Err(DomainError::conflict(
            None,
            "the set-up changed meanwhile; start it again",
        ));
    }
    // A session stolen before the second factor existed does not outlive it.
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(
            sessions::Column::RevokedReason,
            Expr::value("two-factor sign-in turned on"),
        )
        .filter(sessions::Column::UserId.eq(user.id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::Id.ne(principal.session_id.unwrap_or_default()))
        .exec(&tx)
        .await?;
    super::self_service::notify_user(&tx, app, &user, "Two-factor sign-in is on",
        "Signing in to your Guildhall account now takes a code from your authenticator app (or a recovery code). Every other device was signed out.\n\nIf this was not you, reset your password at once.\n").await?;
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user.id))
        .exec(&tx)
        .await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; 10];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let raw = BASE32_NOPAD.encode(&bytes).to_lowercase();
        let code = format!("{}-{}", &raw[..8], &raw[8..16]);
        recovery_codes::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user.id),
            code_hash: Set(secrets::digest(&normalize_recovery(&code))),
            created_at: Set(now),
            used_at: Set(None),
        }
        .insert(&tx)
        .await?;
        codes.push(code);
    }
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.two_factor_enable",
            target: Some(("User", user.id)),
            details: json!({ "recoveryCodes": RECOVERY_CODES }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Codes one account may be given in an hour, across challenges and `disableTwoFactor`.
fn codes_per_user() -> rate_limit::Limit {
    rate_limit::Limit {
        scope: "two_factor_user",
        max: CODES_PER_USER,
        window: Duration::hours(1),
    }
}

/// Uses up one of the user's recovery codes, if `code` is an unused one (one conditional
/// update: of two uses at once, one wins).
async fn use_recovery_code<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let used = recovery_codes::Entity::update_many()
        .col_expr(recovery_codes::Column::UsedAt, Expr::value(now))
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .filter(recovery_codes::Column::CodeHash.eq(secrets::digest(&normalize_recovery(code))))
        .filter(recovery_codes::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    Ok(used.rows_affected == 1)
}

fn normalize_recovery(code: &str) -> String {
    code.trim().to_lowercase().replace([' ', '-'], "")
}

/// Turns two-factor sign-in off after checking the password; the secret and recovery codes go.
pub async fn disable(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    password: String,
    code: &str,
) -> DomainResult<()> {
    principal.require_session("turning two-factor sign-in off")?;
    super::self_service::require_password(app, principal, password).await?;
    let per_user = codes_per_user();
    rate_limit::take(&app.store.conn, &per_user, &principal.user.id.to_string(), app.now()).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let user = users::Entity::find_by_id(principal.user.id)
        .one(&tx)
        .await?
        .ok_or_else(DomainError::unauthenticated)?;
    if user.totp_enabled_at.is_none() {
        return Err(DomainError::conflict(None, "two-factor sign-in is off already"));
    }
    // The second factor itself, not only the password, takes it away.
    let secret = decode_secret(user.totp_secret.as_deref().unwrap_or_default())?;
    let proved = match matching_step(&secret, code, now) {
        Some(step) => user.totp_last_step.is_none_or(|last| step > last),
        None => use_recovery_code(&tx, user.id, code, now).await?,
    };
    if !proved {
        return Err(wrong_code());
    }
    rate_limit::give_back(&tx, &per_user, &user.id.to_string()).await?;
    super::self_service::notify_user(&tx, app, &user, "Two-factor sign-in is off",
        "Signing in to your Guildhall account no longer takes a code.\n\nIf this was not you, reset your password and turn it on again.\n").await?;
    users::Entity::update_many()
        .col_expr(users::Column::TotpSecret, Expr::value(Option::<String>::None))
        .col_expr(users::Column::TotpEnabledAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(users::Column::TotpLastStep, Expr::value(Option::<i64>::None))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(principal.user.id))
        .exec(&tx)
        .await?;
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(principal.user.id))
        .exec(&tx)
        .await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.two_factor_disable",
            target: Some(("User", principal.user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// After a right password for an account with two-factor sign-in: stores a challenge (inside
/// the caller's transaction) and returns it.
pub(crate) async fn challenge<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    user: &users::Model,
) -> DomainResult<String> {
    let token = secrets::generate(CHALLENGE_PREFIX);
    let now = app.now();
    login_challenges::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user.id),
        token_hash: Set(secrets::digest(&token)),
        created_at: Set(now),
        expires_at: Set(now + CHALLENGE_TTL),
        used_at: Set(None),
        attempts: Set(0),
        client_address: Set(meta.client_address.clone()),
        user_agent: Set(meta.user_agent.clone()),
    }
    .insert(conn)
    .await?;
    Ok(token)
}

/// Finishes a sign-in with the second factor: a current code from the app (each step once) or
/// an unused recovery code. Five wrong codes spend the challenge.
pub async fn complete_log_in(app: &App, meta: &RequestMeta, challenge: &str, code: &str) -> DomainResult<Credentials> {
    super::accounts::require_local_accounts(app)?;
    let now = app.now();
    let invalid = || DomainError::Unauthenticated("the sign-in challenge is not valid or has expired".to_owned());
    let Some(row) = login_challenges::Entity::find()
        .filter(login_challenges::Column::TokenHash.eq(secrets::digest(challenge.trim())))
        .one(&app.store.conn)
        .await?
    else {
        return Err(invalid());
    };
    // Every code given spends one attempt first, in one statement committed on its own: any
    // number of requests at once share the challenge's five.
    let spent = login_challenges::Entity::update_many()
        .col_expr(
            login_challenges::Column::Attempts,
            Expr::col(login_challenges::Column::Attempts).add(1),
        )
        .filter(login_challenges::Column::Id.eq(row.id))
        .filter(login_challenges::Column::UsedAt.is_null())
        .filter(login_challenges::Column::ExpiresAt.gt(now))
        .filter(login_challenges::Column::Attempts.lt(MAX_ATTEMPTS))
        .exec(&app.store.conn)
        .await?;
    if spent.rows_affected != 1 {
        return Err(invalid());
    }
    // And the account's, across challenges: a password alone buys no more than this many
    // guesses an hour, however many challenges it asks for.
    let per_user = codes_per_user();
    rate_limit::take(&app.store.conn, &per_user, &row.user_id.to_string(), now).await?;
    let tx = app.store.begin_write().await?;
    let user = users::Entity::find_by_id(row.user_id)
        .one(&tx)
        .await?
        .filter(|u| u.totp_enabled_at.is_some())
        .ok_or_else(invalid)?;
    let secret = decode_secret(user.totp_secret.as_deref().unwrap_or_default())?;
    let accepted = match matching_step(&secret, code, now) {
        // A step at or before the last accepted one was used already.
        Some(step) if user.totp_last_step.is_none_or(|last| step > last) => {
            let moved = users::Entity::update_many()
                .col_expr(users::Column::TotpLastStep, Expr::value(step))
                .filter(users::Column::Id.eq(user.id))
                .filter(
                    sea_orm::Condition::any()
                        .add(users::Column::TotpLastStep.is_null())
                        .add(users::Column::TotpLastStep.lt(step)),
                )
                .exec(&tx)
                .await?;
            moved.rows_affected == 1
        }
        Some(_) => false,
        None => use_recovery_code(&tx, user.id, code, now).await?,
    };
    if !accepted {
        drop(tx);
        audit::record(
            &app.store.conn,
            meta,
            now,
            Event {
                organization_id: None,
                actor: Actor {
                    user_id: None,
                    token_id: None,
                },
                action: "session.two_factor_failed",
                target: Some(("User", user.id)),
                details: json!({ "attempt": row.attempts + 1 }),
            },
        )
        .await?;
        return Err(wrong_code());
    }
    rate_limit::give_back(&tx, &per_user, &user.id.to_string()).await?;
    accounts::log_in_proved(&tx, app, meta, user.email_canonical.as_deref()).await?;
    let spent = login_challenges::Entity::update_many()
        .col_expr(login_challenges::Column::UsedAt, Expr::value(now))
        .filter(login_challenges::Column::Id.eq(row.id))
        .filter(login_challenges::Column::UsedAt.is_null())
        .exec(&tx)
        .await?;
    if spent.rows_affected != 1 {
        return Err(invalid());
    }
    let credentials = accounts::start_session_for(&tx, app, meta, user, now).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(credentials.user.id),
                token_id: None,
            },
            action: "session.log_in",
            target: Some(("User", credentials.user.id)),
            details: json!({ "secondFactor": true }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(credentials)
}

/// How many unused recovery codes the user has.
pub async fn recovery_codes_left(app: &App, user_id: Uuid) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(recovery_codes::Entity::find()
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .filter(recovery_codes::Column::UsedAt.is_null())
        .count(&app.store.conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 vectors (8 digits, the 20-byte ASCII secret).
    #[test]
    fn totp_matches_the_rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_at(secret, time, 8), code, "at {time}");
        }
    }

    /// RFC 4226, appendix D: HOTP values 0 to 9 (6 digits).
    #[test]
    fn hotp_matches_the_rfc_4226_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *code);
        }
    }

    #[test]
    fn a_code_matches_one_step_either_side_and_nothing_else() {
        let secret = b"another secret of twenty";
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let at = |offset: i64| totp_at(secret, now.timestamp() + offset, DIGITS);
        assert!(matching_step(secret, &at(0), now).is_some());
        assert!(matching_step(secret, &at(-30), now).is_some());
        assert!(matching_step(secret, &at(30), now).is_some());
        assert!(matching_step(secret, &at(-90), now).is_none() || at(-90) == at(0));
        assert!(matching_step(secret, "12345", now).is_none());
        assert!(matching_step(secret, "abcdef", now).is_none());
    }
}
