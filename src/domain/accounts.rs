//! Accounts and sessions: sign-up, sign-in with rate limiting, rotating refresh tokens, sign-out.
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{login_failures, refresh_tokens, sessions, users};

use super::audit::{self, Actor, Event};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::validate::{Email, Password, display_name};
use super::{App, Principal, RequestMeta, new_id, rate_limit, secrets};

/// Prefix of refresh tokens, so that secret scanners can recognise leaked ones.
pub const REFRESH_TOKEN_PREFIX: &str = "ghr_";

/// A signed-in session's credentials.
#[derive(Debug)]
pub struct Credentials {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: users::Model,
}

pub struct SignUp {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Argon2 needs about 19 MiB per hash; hashing at most this many at once bounds memory and
/// keeps a burst of sign-ups from starving every other request of CPU.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(hashing_permits_count()))
}

/// Argon2 working memory kept between hashes while more hashes are wanted, one area per hashing
/// permit at most. Allocating and faulting in 19 MiB for every hash of a burst of sign-ups cost
/// more CPU than the hashing itself, and the freed areas went back to the system only later, so
/// the resident set rose by far more than the permits allow at once. When the last wanted hash
/// is done, every area is freed: an idle server keeps none.
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());

/// Hashes wanted right now: running, or waiting for a permit.
static HASHES_WANTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one wanted hash for as long as it lives.
struct HashWanted;

impl HashWanted {
    fn new() -> HashWanted {
        HASHES_WANTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        HashWanted
    }
}

impl Drop for HashWanted {
    fn drop(&mut self) {
        HASHES_WANTED.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Runs `f` with `blocks` blocks of Argon2 memory, reusing a kept area of that size.
fn with_argon2_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let kept = ARGON2_MEMORY.lock().ok().and_then(|mut areas| {
        areas
            .iter()
            .position(|a| a.len() == blocks)
            .map(|i| areas.swap_remove(i))
    });
    let mut memory = kept.unwrap_or_else(|| vec![Block::new(); blocks]);
    let result = f(&mut memory);
    let more_wanted = HASHES_WANTED.load(std::sync::atomic::Ordering::SeqCst) > 1;
    if let Ok(mut areas) = ARGON2_MEMORY.lock() {
        if !more_wanted {
            areas.clear();
        } else if blocks == Params::DEFAULT.block_count() && areas.len() < hashing_permits_count() {
            // Nothing derived from this password stays behind in the kept area.
            memory.fill(Block::new());
            areas.push(memory);
        }
    }
    result
}

fn hashing_permits_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// An Argon2id hash of `password` with the default (OWASP minimum) parameters, as a PHC string.
fn argon2_hash(password: &[u8]) -> Result<String, String> {
    let params = Params::DEFAULT;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| format!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_argon2_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, &salt, &mut out, memory)
    })
    .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC string (with the parameters stored in it).
fn argon2_verify(password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::new(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let hashed = with_argon2_memory(params.block_count(), |memory| {
        argon.hash_password_into_with_memory(password, salt.as_ref(), &mut out, memory)
    });
    // `Output` compares in constant time.
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

async fn hash_password(password: Password) -> DomainResult<String> {
    let _wanted = HashWanted::new();
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| DomainError::Internal(format!("hashing permits: {e}")))?;
    tokio::task::spawn_blocking(move || {
        argon2_hash(password.expose().as_bytes()).map_err(|e| DomainError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| DomainError::Internal(format!("hashing task: {e}")))?
}

/// Verifies in constant work whether or not the account exists, so timing reveals nothing.
async fn verify_password(password: String, hash: Option<String>) -> DomainResult<bool> {
    let _wanted = HashWanted::new();
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| DomainError::Internal(format!("hashing permits: {e}")))?;
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => argon2_verify(password.as_bytes(), &hash),
        None => {
            let _ = argon2_hash(password.as_bytes());
            false
        }
    })
    .await
    .map_err(|e| DomainError::Internal(format!("verifying task: {e}")))
}

/// Whether `password` is the one stored (`None`: no password; the work is the same).
pub(crate) async fn check_password(password: String, hash: Option<String>) -> DomainResult<bool> {
    verify_password(password, hash).await
}

/// Hashes a new password (slow: call before any transaction).
pub(crate) async fn hash(password: Password) -> DomainResult<String> {
    hash_password(password).await
}

/// New credentials for a live session of `user` (a new refresh token beside the others).
pub(crate) async fn issue_for_session<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: users::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Credentials> {
    issue_credentials(conn, app, user, session_id, now).await
}

/// A sign-in proved (the password, and the second factor where one is due): the attempts it
/// counted are given back.
pub(crate) async fn log_in_proved<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    canonical: Option<&str>,
) -> DomainResult<()> {
    if let Some(canonical) = canonical {
        rate_limit::reset(conn, &email_attempts(app), canonical).await?;
    }
    if let Some(address) = &meta.client_address {
        rate_limit::give_back(conn, &address_attempts(app), &rate_limit::address_subject(address)).await?;
    }
    Ok(())
}

/// The account as it is now.
pub async fn user_by_id(app: &App, id: Uuid) -> DomainResult<users::Model> {
    users::Entity::find_by_id(id)
        .one(&app.store.conn)
        .await?
        .ok_or_else(DomainError::unauthenticated)
}

/// Starts a session of `user` (the second factor given) inside the caller's transaction.
pub(crate) async fn start_session_for<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    user: users::Model,
    now: DateTime<Utc>,
) -> DomainResult<Credentials> {
    start_session(conn, app, meta, user, now).await
}

/// A validated sign-up with its password already hashed, ready to be written.
pub struct PreparedSignUp {
    email: Email,
    name: String,
    password_hash: String,
}

fn email_taken() -> DomainError {
    DomainError::conflict(Some("email"), "an account with this email already exists")
}

/// Validates a sign-up and hashes its password (slow, so done before any transaction).
pub async fn prepare_sign_up(app: &App, input: SignUp) -> DomainResult<PreparedSignUp> {
    let email = Email::parse("email", &input.email)?;
    let password = Password::parse("password", &input.password)?;
    let name = display_name("name", &input.name)?;
    if users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .count(&app.store.conn)
        .await?
        > 0
    {
        return Err(email_taken());
    }
    let password_hash = hash_password(password).await?;
    Ok(PreparedSignUp {
        email,
        name,
        password_hash,
    })
}

/// Writes an account whose address is known to be its owner's (an invitation's link proved it,
/// or the operator seeds it), and its first session, inside the caller's transaction.
pub async fn sign_up_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    prepared: PreparedSignUp,
) -> DomainResult<Credentials> {
    let now = app.now();
    let user = users::ActiveModel {
        id: Set(new_id()),
        kind: Set("HUMAN".to_owned()),
        email: Set(Some(prepared.email.display().to_owned())),
        email_canonical: Set(Some(prepared.email.canonical().to_owned())),
        name: Set(prepared.name),
        password_hash: Set(Some(prepared.password_hash)),
        token_version: Set(0),
        service_organization_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        // Only an invitation's link leads here: it was mailed to this address.
        email_verified_at: Set(Some(now)),
        totp_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            email_taken()
        } else {
            e.into()
        }
    })?;
    let credentials = start_session(conn, app, meta, user, now).await?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(credentials.user.id),
                token_id: None,
            },
            action: "user.sign_up",
            target: Some(("User", credentials.user.id)),
            details: json!({}),
        },
    )
    .await?;
    Ok(credentials)
}

/// Sign-ups per address within an hour (counted whether or not the address is taken).
pub const SIGN_UPS_PER_EMAIL: u64 = 5;

/// Creates a HUMAN account whose address is not verified yet and mails it a verification link.
/// The answer is the same whether or not the address is taken: an existing account's owner is
/// mailed that someone tried instead, and the password is hashed either way so that both take
/// the same time. Counted per client address and per address first.
pub async fn sign_up(app: &App, meta: &RequestMeta, input: SignUp) -> DomainResult<()> {
    take_sign_up_attempt(app, meta).await?;
    let email = Email::parse("email", &input.email)?;
    let password = Password::parse("password", &input.password)?;
    let name = display_name("name", &input.name)?;
    let per_email = rate_limit::Limit {
        scope: "sign_up_email",
        max: SIGN_UPS_PER_EMAIL,
        window: chrono::Duration::hours(1),
    };
    rate_limit::take(&app.store.conn, &per_email, email.canonical(), app.now()).await?;
    let password_hash = hash_password(password).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let existing = users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .one(&tx)
        .await?;
    if let Some(user) = existing {
        super::self_service::mail_sign_up_attempt(&tx, app, &user).await?;
        audit::record(
            &tx,
            meta,
            now,
            Event {
                organization_id: None,
                actor: Actor {
                    user_id: None,
                    token_id: None,
                },
                action: "user.sign_up_attempt",
                target: Some(("User", user.id)),
                details: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let inserted = users::ActiveModel {
        id: Set(new_id()),
        kind: Set("HUMAN".to_owned()),
        email: Set(Some(email.display().to_owned())),
        email_canonical: Set(Some(email.canonical().to_owned())),
        name: Set(name),
        password_hash: Set(Some(password_hash)),
        token_version: Set(0),
        service_organization_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        email_verified_at: Set(None),
        totp_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
    }
    .insert(&tx)
    .await;
    let user = match inserted {
        Ok(user) => user,
        // Someone signed up with the address at the same moment: the same answer.
        Err(e) if is_unique_violation(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    super::self_service::send_verification_in(&tx, app, &user).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(user.id),
                token_id: None,
            },
            action: "user.sign_up",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn start_session<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    user: users::Model,
    now: DateTime<Utc>,
) -> DomainResult<Credentials> {
    let session = sessions::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user.id),
        created_at: Set(now),
        refreshed_at: Set(now),
        expires_at: Set(now + app.settings.refresh_token_ttl),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        client_address: Set(meta.client_address.clone()),
        user_agent: Set(meta.user_agent.clone()),
    }
    .insert(conn)
    .await?;
    issue_credentials(conn, app, user, session.id, now).await
}

async fn issue_credentials<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: users::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Credentials> {
    issue_credentials_with(
        conn,
        app,
        user,
        session_id,
        now,
        secrets::generate(REFRESH_TOKEN_PREFIX),
    )
    .await
}

/// A new access token, and the given refresh token stored (hashed) for the session.
async fn issue_credentials_with<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: users::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
    refresh_token: String,
) -> DomainResult<Credentials> {
    refresh_tokens::ActiveModel {
        id: Set(new_id()),
        session_id: Set(session_id),
        token_hash: Set(secrets::digest(&refresh_token)),
        created_at: Set(now),
        expires_at: Set(now + app.settings.refresh_token_ttl),
        rotated_at: Set(None),
    }
    .insert(conn)
    .await?;
    with_access_token(app, user, session_id, now, refresh_token)
}

/// Credentials of a session: a new access token beside the given refresh token.
fn with_access_token(
    app: &App,
    user: users::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
    refresh_token: String,
) -> DomainResult<Credentials> {
    let expires_at = now + app.settings.access_token_ttl;
    let access_token = app
        .tokens
        .issue(user.id, session_id, user.token_version, now, expires_at)?;
    Ok(Credentials {
        access_token,
        refresh_token,
        expires_at,
        user,
    })
}

/// Sign-in attempts per email (a right one is given back).
fn email_attempts(app: &App) -> rate_limit::Limit {
    rate_limit::Limit {
        scope: "log_in_email",
        max: app.settings.login_max_failures_per_email,
        window: app.settings.login_failure_window,
    }
}

/// Sign-in attempts per client address (a right one is given back).
fn address_attempts(app: &App) -> rate_limit::Limit {
    rate_limit::Limit {
        scope: "log_in_address",
        max: app.settings.login_max_failures_per_address,
        window: app.settings.login_failure_window,
    }
}

/// FORBIDDEN when Guildhall's own accounts are switched off (`--local-accounts=false`):
/// people then sign in through the configured identity providers only.
pub fn require_local_accounts(app: &App) -> DomainResult<()> {
    if app.settings.local_accounts {
        return Ok(());
    }
    Err(DomainError::Forbidden {
        message: "sign-in with a Guildhall password is switched off here; sign in through your identity provider"
            .to_owned(),
        key: None,
    })
}

/// Counts a sign-up from the client's address before any password is hashed: RATE_LIMITED past
/// the limit, so one address cannot create accounts (and burn hashing time) without end.
pub async fn take_sign_up_attempt(app: &App, meta: &RequestMeta) -> DomainResult<()> {
    require_local_accounts(app)?;
    let Some(address) = &meta.client_address else {
        return Ok(());
    };
    let limit = rate_limit::Limit {
        scope: "sign_up_address",
        max: app.settings.sign_ups_per_address,
        window: app.settings.sign_up_window,
    };
    rate_limit::take(
        &app.store.conn,
        &limit,
        &rate_limit::address_subject(address),
        app.now(),
    )
    .await
}

/// Signs in with email and password. Failures are counted per email and per client address;
/// past the limit every attempt is refused with RATE_LIMITED until the window passes.
pub async fn log_in(app: &App, meta: &RequestMeta, email: &str, password: String) -> DomainResult<Credentials> {
    require_local_accounts(app)?;
    let canonical = Email::canonical_of(email);
    let now = app.now();
    // Every attempt is counted before the password is checked (one atomic statement each), so
    // parallel guesses cannot all slip under the limit; a right password gives it back.
    if let Some(address) = &meta.client_address {
        rate_limit::take(
            &app.store.conn,
            &address_attempts(app),
            &rate_limit::address_subject(address),
            now,
        )
        .await?;
    }
    rate_limit::take(&app.store.conn, &email_attempts(app), &canonical, now).await?;
    let user = users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(canonical.clone()))
        .one(&app.store.conn)
        .await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = verify_password(password, hash).await?;
    let tx = app.store.begin_write().await?;
    match user {
        Some(user) if ok => {
            if user.totp_enabled_at.is_some() {
                // The attempt stays counted until the second factor is proved: a password alone
                // buys only as many challenges as the sign-in limit allows.
                // The password was right; the second factor is still due.
                let challenge = super::two_factor::challenge(&tx, app, meta, &user).await?;
                tx.commit().await?;
                return Err(DomainError::TwoFactorRequired { challenge });
            }
            log_in_proved(&tx, app, meta, Some(&canonical)).await?;
            let credentials = start_session(&tx, app, meta, user, now).await?;
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
                    details: json!({}),
                },
            )
            .await?;
            tx.commit().await?;
            Ok(credentials)
        }
        user => {
            let mut failures = vec![("email", canonical)];
            if let Some(address) = &meta.client_address {
                failures.push(("address", address.clone()));
            }
            for (scope, subject) in failures {
                login_failures::ActiveModel {
                    id: Set(new_id()),
                    scope: Set(scope.to_owned()),
                    subject: Set(subject),
                    occurred_at: Set(now),
                }
                .insert(&tx)
                .await?;
            }
            audit::record(
                &tx,
                meta,
                now,
                Event {
                    organization_id: None,
                    actor: Actor::default(),
                    action: "session.log_in_failed",
                    target: user.as_ref().map(|u| ("User", u.id)),
                    details: json!({}),
                },
            )
            .await?;
            tx.commit().await?;
            Err(DomainError::Unauthenticated(
                "the email or password is wrong".to_owned(),
            ))
        }
    }
}

/// Exchanges a refresh token for new credentials. A token that was already rotated signals
/// theft: the whole session (its token family) is revoked.
pub async fn refresh_session(app: &App, meta: &RequestMeta, presented: &str) -> DomainResult<Credentials> {
    require_local_accounts(app)?;
    let invalid = || DomainError::Unauthenticated("the refresh token is invalid or expired".to_owned());
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let Some(token) = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(secrets::digest(presented)))
        .one(&tx)
        .await?
    else {
        return Err(invalid());
    };
    let session = sessions::Entity::find_by_id(token.session_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid)?;
    if session.revoked_at.is_some() || session.expires_at <= now || token.expires_at <= now {
        return Err(invalid());
    }
    // Compare-and-set: of two concurrent uses of one token at most one rotates it.
    let rotated = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RotatedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(token.id))
        .filter(refresh_tokens::Column::RotatedAt.is_null())
        .exec(&tx)
        .await?;
    if rotated.rows_affected != 1 {
        // Two tabs refreshing at once: within the reuse interval the same successor is handed
        // out again (with a new access token); past it, a used token means theft.
        let successor = app.tokens.successor(REFRESH_TOKEN_PREFIX, presented);
        // Read again: the copy above may predate a rotation that committed while this waited
        // for the row (two tabs at once on PostgreSQL).
        let rotated_at = refresh_tokens::Entity::find_by_id(token.id)
            .one(&tx)
            .await?
            .and_then(|t| t.rotated_at);
        let within_interval = rotated_at.is_some_and(|at| now - at <= app.settings.refresh_reuse_interval);
        if within_interval
            && refresh_tokens::Entity::find()
                .filter(refresh_tokens::Column::TokenHash.eq(secrets::digest(&successor)))
                .filter(refresh_tokens::Column::SessionId.eq(session.id))
                .filter(refresh_tokens::Column::RotatedAt.is_null())
                .count(&tx)
                .await?
                > 0
        {
            let user = users::Entity::find_by_id(session.user_id)
                .one(&tx)
                .await?
                .ok_or_else(invalid)?;
            let credentials = with_access_token(app, user, session.id, now, successor)?;
            tx.commit().await?;
            return Ok(credentials);
        }
        revoke_sessions(&tx, &[session.id], now, "refresh token reused").await?;
        audit::record(
            &tx,
            meta,
            now,
            Event {
                organization_id: None,
                actor: Actor {
                    user_id: Some(session.user_id),
                    token_id: None,
                },
                action: "session.refresh_token_reused",
                target: Some(("Session", session.id)),
                details: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        return Err(invalid());
    }
    let user = users::Entity::find_by_id(session.user_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid)?;
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RefreshedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(session.id))
        .exec(&tx)
        .await?;
    let successor = app.tokens.successor(REFRESH_TOKEN_PREFIX, presented);
    let credentials = issue_credentials_with(&tx, app, user, session.id, now, successor).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(session.user_id),
                token_id: None,
            },
            action: "session.refresh",
            target: Some(("Session", session.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(credentials)
}

async fn revoke_sessions<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
    now: DateTime<Utc>,
    reason: &str,
) -> DomainResult<u64> {
    let result = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::Id.is_in(ids.to_vec()))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Ends the caller's session, or every session of theirs; returns how many were ended.
/// Everywhere also bumps the token version, so outstanding access tokens stop working at once.
pub async fn log_out(app: &App, meta: &RequestMeta, principal: &Principal, everywhere: bool) -> DomainResult<u64> {
    principal.require_session("signing out")?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let ended = if everywhere {
        users::Entity::update_many()
            .col_expr(
                users::Column::TokenVersion,
                Expr::col(users::Column::TokenVersion).add(1),
            )
            .filter(users::Column::Id.eq(principal.user.id))
            .exec(&tx)
            .await?;
        super::self_service::void_links(&tx, principal.user.id, now, None).await?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(now))
            .col_expr(sessions::Column::RevokedReason, Expr::value("logged out everywhere"))
            .filter(sessions::Column::UserId.eq(principal.user.id))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(&tx)
            .await?
            .rows_affected
    } else {
        let session = principal
            .session_id
            .ok_or_else(|| DomainError::bad_input("everywhere", "this credential has no session to end"))?;
        revoke_sessions(&tx, &[session], now, "logged out").await?
    };
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(principal.user.id),
                token_id: None,
            },
            action: if everywhere {
                "session.log_out_everywhere"
            } else {
                "session.log_out"
            },
            target: Some(("User", principal.user.id)),
            details: json!({ "sessionsEnded": ended }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Resolves a bearer access token to its user, refusing tokens of ended sessions and tokens
/// issued before the user's last "log out everywhere".
pub async fn authenticate(app: &App, bearer: &str) -> DomainResult<Principal> {
    let verified = app.tokens.verify(bearer, app.now())?;
    let invalid = || DomainError::Unauthenticated("the access token is no longer valid".to_owned());
    let user = match app.standing.session(verified.session_id, verified.user_id) {
        Some(user) => user,
        None => {
            let read_at = app.standing.generation();
            // One statement: the user, provided the session is live.
            let live_session = sea_orm::sea_query::Query::select()
                .column(sessions::Column::UserId)
                .from(sessions::Entity)
                .and_where(sea_orm::sea_query::Expr::col(sessions::Column::Id).eq(verified.session_id))
                .and_where(sea_orm::sea_query::Expr::col(sessions::Column::RevokedAt).is_null())
                .to_owned();
            let user = users::Entity::find_by_id(verified.user_id)
                .filter(users::Column::Id.in_subquery(live_session))
                .one(&app.store.conn)
                .await?
                .ok_or_else(invalid)?;
            app.standing.keep_session(read_at, verified.session_id, user.clone());
            user
        }
    };
    if user.token_version != verified.version {
        return Err(invalid());
    }
    Ok(Principal {
        user,
        session_id: Some(verified.session_id),
        token: None,
        external: None,
    })
}

#[cfg(test)]
mod argon2_tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn hashes_are_standard_phc_strings_that_verify_both_ways_with_reused_zeroed_memory() {
        let ours = argon2_hash(b"correct horse battery").expect("hash");
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(argon2_verify(b"correct horse battery", &ours));
        assert!(!argon2_verify(b"correct horse battery!", &ours));
        // The crate's own verifier accepts ours, and ours accepts the crate's.
        let reference = Argon2::default();
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(reference.verify_password(b"correct horse battery", &parsed).is_ok());
        let theirs = reference.hash_password(b"another secret").expect("hash").to_string();
        assert!(argon2_verify(b"another secret", &theirs));
        assert!(!argon2_verify(b"another secreT", &theirs));
        // Two hashes of one password differ by their salt.
        assert_ne!(argon2_hash(b"same").expect("hash"), argon2_hash(b"same").expect("hash"));
        assert!(!argon2_verify(b"x", "not a hash"));

        // While another hash is wanted, the working memory is kept for it, zeroed; once none
        // is, nothing is kept. (One test, so that no other hash in this module runs meanwhile.)
        let blocks = Params::DEFAULT.block_count();
        let (this, next) = (HashWanted::new(), HashWanted::new());
        argon2_hash(b"keep the area").expect("hash");
        {
            let areas = ARGON2_MEMORY.lock().expect("areas");
            assert!(!areas.is_empty() && areas.len() <= hashing_permits_count());
            for area in areas.iter() {
                assert_eq!(area.len(), blocks);
                assert!(area.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
            }
        }
        drop(next);
        argon2_hash(b"the last one").expect("hash");
        assert!(ARGON2_MEMORY.lock().expect("areas").is_empty());
        drop(this);
    }
}
