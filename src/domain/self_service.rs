//! What people do to their own account: their name, password and address, their signed-in
//! devices, a forgotten password, and deleting the account.
//!
//! Every change needs a signed-in session (an API token never reaches the account itself), is
//! audited, and where it proves who is asking it asks for the password again. Links sent by mail
//! ([`account_tokens`]) are single-use, expire, and are stored only as SHA-256 digests. Asking for
//! a password reset answers the same for every address, known or not, and is rate-limited per
//! address and per client address in the database (every server process counts the same).
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{
    account_tokens, memberships, organizations as org_rows, refresh_tokens, role_bindings, sessions, users,
};

use super::accounts::{self, Credentials};
use super::audit::{self, Actor, Event};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::mailer::{self, Outgoing};
use super::validate::{Email, Password, display_name};
use super::{App, Principal, RequestMeta, bindings, builtins, new_id, rate_limit, secrets};

/// How long a password-reset link works.
pub const PASSWORD_RESET_TTL: Duration = Duration::hours(1);
/// How long the link proving a new address works.
pub const EMAIL_CHANGE_TTL: Duration = Duration::hours(24);
/// Password-reset requests per address, and per client address, in [`REQUEST_WINDOW`].
pub const RESETS_PER_EMAIL: u64 = 5;
pub const RESETS_PER_CLIENT: u64 = 20;
/// Wrong current passwords one account may give (changing password or address, deleting) in
/// [`REQUEST_WINDOW`].
pub const PASSWORD_CHECKS_PER_USER: u64 = 10;
/// Address changes one account may ask for in [`REQUEST_WINDOW`].
pub const EMAIL_CHANGES_PER_USER: u64 = 5;
pub const REQUEST_WINDOW: Duration = Duration::hours(1);

const RESET: &str = "password_reset";
const EMAIL_CHANGE: &str = "email_change";
const VERIFICATION: &str = "email_verification";
/// How long a verification link works.
pub const VERIFICATION_TTL: Duration = Duration::hours(24);
/// Verification mails one account may ask for in [`REQUEST_WINDOW`].
pub const VERIFICATIONS_PER_USER: u64 = 5;
const TOKEN_PREFIX: &str = "gha_";

fn actor(principal: &Principal) -> Actor {
    Actor {
        user_id: Some(principal.user.id),
        token_id: None,
    }
}

fn invalid_link() -> DomainError {
    DomainError::bad_input("token", "the link is not valid, was already used or has expired")
}

/// The viewer's row as it is now (not as the request's credential read it).
async fn current_user<C: ConnectionTrait>(conn: &C, principal: &Principal) -> DomainResult<users::Model> {
    users::Entity::find_by_id(principal.user.id)
        .one(conn)
        .await?
        .ok_or_else(DomainError::unauthenticated)
}

/// FORBIDDEN-free check of the current password, counted per account: a stolen session cannot
/// guess its way to changing the password, the address or deleting the account.
pub(crate) async fn require_password(app: &App, principal: &Principal, password: String) -> DomainResult<()> {
    let limit = rate_limit::Limit {
        scope: "account_password_check",
        max: PASSWORD_CHECKS_PER_USER,
        window: REQUEST_WINDOW,
    };
    rate_limit::take(&app.store.conn, &limit, &principal.user.id.to_string(), app.now()).await?;
    let user = current_user(&app.store.conn, principal).await?;
    if !accounts::check_password(password, user.password_hash).await? {
        return Err(DomainError::bad_input("password", "the password is not right"));
    }
    // A right password gives the attempt back.
    rate_limit::give_back(&app.store.conn, &limit, &principal.user.id.to_string()).await?;
    Ok(())
}

/// Changes the viewer's name.
pub async fn update_profile(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    name: &str,
) -> DomainResult<users::Model> {
    principal.require_session("changing your profile")?;
    let name = display_name("name", name)?;
    let tx = app.store.begin_write().await?;
    let user = current_user(&tx, principal).await?;
    if user.name == name {
        tx.rollback().await?;
        return Ok(user);
    }
    let mut model = user.clone().into_active_model();
    model.name = Set(name.clone());
    model.updated_at = Set(app.now());
    let updated = model.update(&tx).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.update_profile",
            target: Some(("User", user.id)),
            details: json!({ "name": { "changed": true } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Ends every session of the user but `keep`, and moves the token version so that no access
/// token issued before now works (the kept session gets new credentials).
async fn end_other_sessions<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
    reason: &str,
) -> DomainResult<u64> {
    users::Entity::update_many()
        .col_expr(
            users::Column::TokenVersion,
            Expr::col(users::Column::TokenVersion).add(1),
        )
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    let mut ending = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        ending = ending.filter(sessions::Column::Id.ne(keep));
    }
    Ok(ending.exec(conn).await?.rows_affected)
}

/// Changes the viewer's password after checking the current one; every other session ends and
/// this one continues with new credentials.
pub async fn change_password(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    current: String,
    new: String,
) -> DomainResult<Credentials> {
    principal.require_session("changing your password")?;
    accounts::require_local_accounts(app)?;
    let session_id = principal
        .session_id
        .ok_or_else(|| DomainError::bad_input("currentPassword", "this credential has no session"))?;
    let new = Password::parse("newPassword", &new)?;
    require_password(app, principal, current).await?;
    let hash = accounts::hash(new).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .filter(users::Column::Id.eq(principal.user.id))
        .exec(&tx)
        .await?;
    let ended = end_other_sessions(&tx, principal.user.id, Some(session_id), now, "password changed").await?;
    void_links(&tx, principal.user.id, now, None).await?;
    // This session goes on with new credentials only: a refresh token of it that leaked before
    // the change is no use after it.
    refresh_tokens::Entity::delete_many()
        .filter(refresh_tokens::Column::SessionId.eq(session_id))
        .exec(&tx)
        .await?;
    let user = current_user(&tx, principal).await?;
    let credentials = accounts::issue_for_session(&tx, app, user.clone(), session_id, now).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.change_password",
            target: Some(("User", user.id)),
            details: json!({ "sessionsEnded": ended }),
        },
    )
    .await?;
    notify(&tx, app, &user, "Your Guildhall password was changed",
        "The password of your Guildhall account was just changed, and every other device was signed out.\n\nIf this was not you, reset your password at once.\n").await?;
    tx.commit().await?;
    Ok(credentials)
}

/// Queues a notice to the user's own address (for other modules).
pub(crate) async fn notify_user<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: &users::Model,
    subject: &str,
    body: &str,
) -> DomainResult<()> {
    notify(conn, app, user, subject, body).await
}

/// Queues a notice to the user's own address.
async fn notify<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: &users::Model,
    subject: &str,
    body: &str,
) -> DomainResult<()> {
    let Some(email) = &user.email else {
        return Ok(());
    };
    mailer::enqueue(
        conn,
        app.now(),
        Outgoing {
            recipient: email,
            subject: subject.to_owned(),
            body: body.to_owned(),
            kind: "account_notice",
            invitation_id: None,
            listed: None,
        },
    )
    .await
}

fn link(app: &App, path: &str, token: &str) -> String {
    format!("{}/{path}?token={token}", app.settings.public_url)
}

/// Voids every unused mailed link of the user (kept: `except`, by purpose). Called whenever the
/// account's control changes hands or is re-established (a reset, a new password, signing out
/// everywhere, a confirmed address), so that a link an attacker asked for earlier dies with
/// their access.
pub(crate) async fn void_links<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
    except: Option<&str>,
) -> DomainResult<()> {
    let mut voiding = account_tokens::Entity::update_many()
        .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
        .filter(account_tokens::Column::UserId.eq(user_id))
        .filter(account_tokens::Column::UsedAt.is_null());
    if let Some(purpose) = except {
        voiding = voiding.filter(account_tokens::Column::Purpose.ne(purpose));
    }
    voiding.exec(conn).await?;
    // So do sign-ins waiting for their second factor.
    crate::store::entities::login_challenges::Entity::delete_many()
        .filter(crate::store::entities::login_challenges::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Stores a new single-use token (its digest) and returns the token.
async fn issue_token<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user_id: Uuid,
    purpose: &str,
    email: Option<&Email>,
    ttl: Duration,
) -> DomainResult<String> {
    let token = secrets::generate(TOKEN_PREFIX);
    let now = app.now();
    // One link of a purpose works at a time: asking again replaces the last.
    account_tokens::Entity::update_many()
        .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
        .filter(account_tokens::Column::UserId.eq(user_id))
        .filter(account_tokens::Column::Purpose.eq(purpose))
        .filter(account_tokens::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    account_tokens::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id),
        purpose: Set(purpose.to_owned()),
        token_hash: Set(secrets::digest(&token)),
        email: Set(email.map(|e| e.display().to_owned())),
        email_canonical: Set(email.map(|e| e.canonical().to_owned())),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        used_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(token)
}

/// Whether a token names a live link of that purpose (a read, outside any transaction).
async fn link_is_live(app: &App, token: &str, purpose: &str) -> DomainResult<bool> {
    Ok(account_tokens::Entity::find()
        .filter(account_tokens::Column::TokenHash.eq(secrets::digest(token.trim())))
        .filter(account_tokens::Column::Purpose.eq(purpose))
        .filter(account_tokens::Column::UsedAt.is_null())
        .filter(account_tokens::Column::ExpiresAt.gt(app.now()))
        .one(&app.store.conn)
        .await?
        .is_some())
}

/// Takes a token for its one use: the row when it is of that purpose, unused and unexpired,
/// marked used by the same statement that checks it (two uses at once: one wins).
async fn redeem<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    token: &str,
    purpose: &str,
) -> DomainResult<account_tokens::Model> {
    let now = app.now();
    let row = account_tokens::Entity::find()
        .filter(account_tokens::Column::TokenHash.eq(secrets::digest(token.trim())))
        .filter(account_tokens::Column::Purpose.eq(purpose))
        .one(conn)
        .await?
        .filter(|t| t.used_at.is_none() && t.expires_at > now)
        .ok_or_else(invalid_link)?;
    let taken = account_tokens::Entity::update_many()
        .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
        .filter(account_tokens::Column::Id.eq(row.id))
        .filter(account_tokens::Column::UsedAt.is_null())
        .exec(conn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(invalid_link());
    }
    Ok(row)
}

/// Mails a reset link to the account with this address, if there is one. The answer is the
/// same whether or not there is; both the address and the client address are counted first.
pub async fn request_password_reset(app: &App, meta: &RequestMeta, email: &str) -> DomainResult<()> {
    accounts::require_local_accounts(app)?;
    let canonical = Email::canonical_of(email);
    let now = app.now();
    let per_email = rate_limit::Limit {
        scope: "password_reset_email",
        max: RESETS_PER_EMAIL,
        window: REQUEST_WINDOW,
    };
    rate_limit::take(&app.store.conn, &per_email, &canonical, now).await?;
    if let Some(address) = &meta.client_address {
        let per_client = rate_limit::Limit {
            scope: "password_reset_address",
            max: RESETS_PER_CLIENT,
            window: REQUEST_WINDOW,
        };
        rate_limit::take(&app.store.conn, &per_client, &rate_limit::address_subject(address), now).await?;
    }
    let Some(user) = users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(canonical.clone()))
        .filter(users::Column::Kind.eq("HUMAN"))
        .one(&app.store.conn)
        .await?
    else {
        return Ok(());
    };
    let tx = app.store.begin_write().await?;
    let token = issue_token(&tx, app, user.id, RESET, None, PASSWORD_RESET_TTL).await?;
    let body = format!(
        "Someone asked to reset the password of your Guildhall account.\n\nChoose a new password here (the link works for one hour, once):\n{}\n\nIf this was not you, ignore this message: your password stays as it is.\n",
        link(app, "reset-password", &token)
    );
    notify(&tx, app, &user, "Reset your Guildhall password", &body).await?;
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
            action: "user.request_password_reset",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password through a reset link: the link is used up, every session ends and every
/// access token stops working.
pub async fn reset_password(app: &App, meta: &RequestMeta, token: &str, new: String) -> DomainResult<()> {
    accounts::require_local_accounts(app)?;
    let new = Password::parse("newPassword", &new)?;
    // A made-up link costs one read, never a password hash.
    if !link_is_live(app, token, RESET).await? {
        return Err(invalid_link());
    }
    let hash = accounts::hash(new).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let row = redeem(&tx, app, token, RESET).await?;
    void_links(&tx, row.user_id, now, None).await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .filter(users::Column::Id.eq(row.user_id))
        .exec(&tx)
        .await?;
    // The link reached the address: it is proved, whatever a squatter did before.
    users::Entity::update_many()
        .col_expr(users::Column::EmailVerifiedAt, Expr::value(now))
        .filter(users::Column::Id.eq(row.user_id))
        .filter(users::Column::EmailVerifiedAt.is_null())
        .exec(&tx)
        .await?;
    let ended = end_other_sessions(&tx, row.user_id, None, now, "password reset").await?;
    let user = users::Entity::find_by_id(row.user_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid_link)?;
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
            action: "user.reset_password",
            target: Some(("User", user.id)),
            details: json!({ "sessionsEnded": ended }),
        },
    )
    .await?;
    notify(&tx, app, &user, "Your Guildhall password was reset",
        "The password of your Guildhall account was just reset through a link sent to this address, and every device was signed out.\n\nIf this was not you, reset it again and tell your administrator.\n").await?;
    tx.commit().await?;
    Ok(())
}

/// Asks to move the account to a new address (the current password proves it is the owner):
/// the new address gets a link that makes the change, the old one a notice. The answer is the
/// same whether or not the new address is taken (its owner is told instead).
pub async fn change_email(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    new_email: &str,
    password: String,
) -> DomainResult<()> {
    principal.require_session("changing your address")?;
    let email = Email::parse("newEmail", new_email)?;
    let limit = rate_limit::Limit {
        scope: "email_change_request",
        max: EMAIL_CHANGES_PER_USER,
        window: REQUEST_WINDOW,
    };
    rate_limit::take(&app.store.conn, &limit, &principal.user.id.to_string(), app.now()).await?;
    require_password(app, principal, password).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let user = current_user(&tx, principal).await?;
    if user.email_canonical.as_deref() == Some(email.canonical()) {
        return Err(DomainError::bad_input(
            "newEmail",
            "this is already the account's address",
        ));
    }
    let taken = users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .one(&tx)
        .await?
        .is_some();
    if taken {
        // The earlier link dies either way, so whether it still works tells nothing.
        account_tokens::Entity::update_many()
            .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
            .filter(account_tokens::Column::UserId.eq(user.id))
            .filter(account_tokens::Column::Purpose.eq(EMAIL_CHANGE))
            .filter(account_tokens::Column::UsedAt.is_null())
            .exec(&tx)
            .await?;
        mailer::enqueue(
            &tx,
            now,
            Outgoing {
                recipient: email.display(),
                subject: "Someone tried to use your address on Guildhall".to_owned(),
                body: "Someone signed in to another Guildhall account asked to move it to this address, which is already yours. Nothing changed.\n".to_owned(),
                kind: "account_notice",
                invitation_id: None,
                listed: None,
            },
        )
        .await?;
    } else {
        let token = issue_token(&tx, app, user.id, EMAIL_CHANGE, Some(&email), EMAIL_CHANGE_TTL).await?;
        mailer::enqueue(
            &tx,
            now,
            Outgoing {
                recipient: email.display(),
                subject: "Confirm your new Guildhall address".to_owned(),
                body: format!(
                    "Confirm that this is the new address of your Guildhall account (the link works for 24 hours, once):\n{}\n\nIf you did not ask for this, ignore this message.\n",
                    link(app, "confirm-email", &token)
                ),
                kind: "account_notice",
                invitation_id: None,
                listed: None,
            },
        )
        .await?;
    }
    notify(&tx, app, &user, "Your Guildhall address is about to change",
        "Someone signed in to your Guildhall account asked to move it to another address. It changes once the new address is confirmed.\n\nIf this was not you, change your password at once.\n").await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.request_email_change",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Makes the address change a link proved: CONFLICT when someone took the address meanwhile.
pub async fn confirm_email_change(app: &App, meta: &RequestMeta, token: &str) -> DomainResult<users::Model> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let row = redeem(&tx, app, token, EMAIL_CHANGE).await?;
    // Links mailed to the old address (a reset among them) die with the change.
    void_links(&tx, row.user_id, now, None).await?;
    let user = users::Entity::find_by_id(row.user_id)
        .one(&tx)
        .await?
        .ok_or_else(invalid_link)?;
    let old = user.clone();
    let mut model = user.into_active_model();
    model.email = Set(row.email.clone());
    model.email_canonical = Set(row.email_canonical.clone());
    // The link reached the new address: it is proved.
    model.email_verified_at = Set(Some(now));
    model.updated_at = Set(now);
    let updated = model.update(&tx).await.map_err(|e| {
        if is_unique_violation(&e) {
            DomainError::conflict(Some("token"), "another account took this address meanwhile")
        } else {
            e.into()
        }
    })?;
    notify(&tx, app, &old, "Your Guildhall address changed",
        "Your Guildhall account now uses another address; mail about it no longer comes here.\n\nIf this was not you, tell your administrator.\n").await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: Actor {
                user_id: Some(updated.id),
                token_id: None,
            },
            action: "user.change_email",
            target: Some(("User", updated.id)),
            details: json!({ "from": old.email, "to": updated.email }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Mails a new account the link that proves its address (inside the sign-up's transaction).
pub(crate) async fn send_verification_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: &users::Model,
) -> DomainResult<()> {
    send_verification_with(conn, app, user, None).await
}

/// [`send_verification_in`], the link carrying where the app continues (`next`, checked).
async fn send_verification_with<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: &users::Model,
    next: Option<&str>,
) -> DomainResult<()> {
    let Some(address) = &user.email else {
        return Ok(());
    };
    let email = Email::parse("email", address)?;
    let token = issue_token(conn, app, user.id, VERIFICATION, Some(&email), VERIFICATION_TTL).await?;
    let mut url = link(app, "verify-email", &token);
    if let Some(next) = next {
        url.push_str("&next=");
        url.push_str(next);
    }
    let body = format!(
        "Welcome to Guildhall. Confirm that this address is yours (the link works for 24 hours, once):\n{url}\n\nUntil then you can sign in, but not create organizations or accept invitations.\nIf you did not sign up, ignore this message.\n"
    );
    notify(conn, app, user, "Confirm your Guildhall address", &body).await
}

/// Tells an existing account's owner that someone tried to sign up with their address.
pub(crate) async fn mail_sign_up_attempt<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user: &users::Model,
) -> DomainResult<()> {
    notify(conn, app, user, "Someone tried to sign up with your address",
        "Someone tried to create a Guildhall account with this address, which already has one. Nothing changed.\n\nIf it was you, sign in instead, or reset your password if you forgot it.\n").await
}

/// Marks the account's address verified through its link, opened while signed in to that
/// account. The link is used up; a link for an address the account no longer has, or opened in
/// another account's session, does nothing.
pub async fn verify_email(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    token: &str,
) -> DomainResult<users::Model> {
    principal.require_session("verifying your address")?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let row = redeem(&tx, app, token, VERIFICATION).await?;
    // Both proofs, from one person: the link (the mailbox) opened in a session of the account
    // (its password). Someone who signed up first with another's address cannot have the
    // address's owner verify it for them by clicking the mail.
    if row.user_id != principal.user.id {
        return Err(invalid_link());
    }
    let user = users::Entity::find_by_id(row.user_id)
        .one(&tx)
        .await?
        .filter(|u| u.email_canonical == row.email_canonical)
        .ok_or_else(invalid_link)?;
    if user.email_verified_at.is_some() {
        tx.commit().await?;
        return Ok(user);
    }
    let mut model = user.into_active_model();
    model.email_verified_at = Set(Some(now));
    model.updated_at = Set(now);
    let user = model.update(&tx).await?;
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
            action: "user.verify_email",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Mails the viewer a new verification link (the last one stops working); at most
/// [`VERIFICATIONS_PER_USER`] an hour. CONFLICT when the address is verified already.
pub async fn send_verification_email(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    next: Option<&str>,
) -> DomainResult<()> {
    principal.require_session("verifying your address")?;
    if let Some(next) = next
        && (!next.starts_with('/')
            || next.starts_with("//")
            || next.len() > 200
            || !next.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c)))
    {
        return Err(DomainError::bad_input(
            "next",
            "use a path of the app: `/` then letters, digits and `/_-.`, at most 200 characters",
        ));
    }
    let limit = rate_limit::Limit {
        scope: "verification_mail",
        max: VERIFICATIONS_PER_USER,
        window: REQUEST_WINDOW,
    };
    rate_limit::take(&app.store.conn, &limit, &principal.user.id.to_string(), app.now()).await?;
    let tx = app.store.begin_write().await?;
    let user = current_user(&tx, principal).await?;
    if user.email_verified_at.is_some() {
        return Err(DomainError::conflict(None, "the address is verified already"));
    }
    send_verification_with(&tx, app, &user, next).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.send_verification",
            target: Some(("User", user.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// EMAIL_NOT_VERIFIED unless the person acting has proved their address (service accounts have
/// none and never need it).
pub fn require_verified(principal: &Principal, what: &str) -> DomainResult<()> {
    if principal.user.kind == "HUMAN" && principal.user.email_verified_at.is_none() {
        return Err(DomainError::EmailNotVerified(format!(
            "{what} needs a verified address: open the link mailed to you, or ask for a new one with `sendVerificationEmail`"
        )));
    }
    Ok(())
}

/// The viewer's live sessions (signed-in devices), most recently used first.
pub async fn sessions_of(app: &App, principal: &Principal) -> DomainResult<Vec<sessions::Model>> {
    principal.require_session("listing your devices")?;
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(principal.user.id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(app.now()))
        .order_by_desc(sessions::Column::RefreshedAt)
        .order_by_desc(sessions::Column::Id)
        .all(&app.store.conn)
        .await?)
}

/// Ends one of the viewer's sessions (signs that device out); NOT_FOUND for anyone else's.
pub async fn end_session(app: &App, meta: &RequestMeta, principal: &Principal, session_id: Uuid) -> DomainResult<Uuid> {
    principal.require_session("signing a device out")?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let ended = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(
            sessions::Column::RevokedReason,
            Expr::value("ended from another device"),
        )
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::UserId.eq(principal.user.id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(&tx)
        .await?;
    if ended.rows_affected == 0 {
        return Err(DomainError::NotFound("session"));
    }
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "session.end",
            target: Some(("User", principal.user.id)),
            details: json!({ "sessionId": session_id, "current": principal.session_id == Some(session_id) }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(session_id)
}

/// Deletes the viewer's account after checking the password: LAST_OWNER naming every
/// organization that would be left without its owners. Memberships (with their bindings and
/// team places), sessions and personal tokens go in the same transaction; audit events stay,
/// their actor no longer resolvable.
pub async fn delete_account(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    password: String,
) -> DomainResult<()> {
    principal.require_session("deleting your account")?;
    require_password(app, principal, password).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let mine = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(principal.user.id))
        .order_by_asc(memberships::Column::OrganizationId)
        .all(&tx)
        .await?;
    let owner = builtins::role_id("owner");
    let mut stranded = Vec::new();
    for membership in &mine {
        // Locked in organization order, as every writer locks one organization: checked under
        // the lock, no concurrent change of owners slips past.
        let organization = super::organizations::lock(&tx, membership.organization_id).await?;
        let owned: Vec<role_bindings::Model> = role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.eq(membership.id))
            .filter(role_bindings::Column::RoleId.eq(owner))
            .filter(role_bindings::Column::WorkspaceId.is_null())
            .all(&tx)
            .await?;
        if owned.is_empty() {
            continue;
        }
        if let Err(DomainError::LastOwner(_)) = bindings::ensure_min_holders(&tx, app, organization.id, &owned).await {
            stranded.push(organization);
        }
    }
    if !stranded.is_empty() {
        let names: Vec<String> = stranded
            .iter()
            .map(|o: &org_rows::Model| format!("`{}`", o.slug))
            .collect();
        return Err(DomainError::LastOwner(format!(
            "you are the last owner of {}: transfer ownership or delete the organization first",
            names.join(", ")
        )));
    }
    for membership in &mine {
        audit::record(
            &tx,
            meta,
            now,
            Event {
                organization_id: Some(membership.organization_id),
                actor: actor(principal),
                action: "member.leave",
                target: Some(("Membership", membership.id)),
                details: json!({ "userId": principal.user.id, "accountDeleted": true }),
            },
        )
        .await?;
    }
    users::Entity::delete_by_id(principal.user.id).exec(&tx).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: None,
            actor: actor(principal),
            action: "user.delete",
            target: Some(("User", principal.user.id)),
            details: json!({ "memberships": mine.len() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
