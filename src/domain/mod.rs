//! Domain services: they own transactions and the invariants of the model.
pub mod access;
pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod authorize;
pub mod bindings;
pub mod builtins;
pub mod contacts;
pub mod definitions;
pub mod documents;
pub mod error;
pub mod grant_rule;
pub mod identity;
pub mod invitations;
pub mod limits;
pub mod mailer;
pub mod members;
pub mod organizations;
pub mod owner_safety;
pub mod page;
pub mod preview;
pub mod rate_limit;
pub mod retention;
pub mod secrets;
pub mod self_service;
pub mod standing;
pub mod teams;
pub mod tokens;
pub mod two_factor;
pub mod validate;
pub mod who_can;
pub mod workspaces;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::authz::Catalog;
use crate::store::Store;
use crate::store::entities::users;

pub use error::{DomainError, DomainResult};

/// Settings the services need at run time.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base of links to the web app (invitations).
    pub public_url: String,
    /// Base of links to pages this server answers itself (unsubscribing).
    pub api_url: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a rotated refresh token still yields its (same) successor: two tabs refreshing
    /// at once both stay signed in.
    pub refresh_reuse_interval: Duration,
    pub invitation_ttl: Duration,
    /// Notification mails one organization may queue a day.
    pub notifications_per_day: u64,
    /// How long a recovery of ownership waits for the owners to cancel it.
    pub owner_recovery_wait: Duration,
    pub login_max_failures_per_email: u64,
    pub login_max_failures_per_address: u64,
    pub login_failure_window: Duration,
    /// Accounts created per client address within `sign_up_window`.
    pub sign_ups_per_address: u64,
    pub sign_up_window: Duration,
    pub plan_limits: limits::PlanLimits,
    /// Whether people may sign up and sign in with a Guildhall password (off when every
    /// person signs in through an identity provider).
    pub local_accounts: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:8080".to_owned(),
            api_url: "http://127.0.0.1:8080".to_owned(),
            access_token_ttl: Duration::minutes(15),
            refresh_token_ttl: Duration::days(30),
            refresh_reuse_interval: Duration::seconds(5),
            invitation_ttl: Duration::hours(72),
            owner_recovery_wait: Duration::hours(168),
            notifications_per_day: 5_000,
            login_max_failures_per_email: 5,
            login_max_failures_per_address: 50,
            login_failure_window: Duration::minutes(15),
            sign_ups_per_address: 20,
            sign_up_window: Duration::hours(1),
            plan_limits: limits::PlanLimits::default(),
            local_accounts: true,
        }
    }
}

/// The service's notion of now; tests move it forward instead of sleeping.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Moves the clock forward (for tests of expiry).
    pub fn advance(&self, by: Duration) {
        self.offset_seconds.fetch_add(by.num_seconds(), Ordering::Relaxed);
    }
}

/// Everything a service call needs: the database, the catalog, keys and settings.
pub struct App {
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub tokens: tokens::AccessTokens,
    pub builtins: builtins::Index,
    pub settings: Settings,
    pub clock: Clock,
    /// Callers' sessions, tokens and access, kept while the database is unchanged.
    pub standing: standing::Standing,
    /// Identity providers whose tokens sign people in.
    pub identity: identity::Providers,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The built-in keychains as rows (the database rows exist for foreign keys and hold the
    /// same values).
    pub fn builtin_keychain_rows(&self) -> &[crate::store::entities::keychains::Model] {
        &self.builtins.keychain_rows
    }
}

/// Facts about the HTTP request behind a call, for sessions and the audit log.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// The caller a bearer credential names: an API token (by its prefix) or a session's access token.
pub async fn authenticate(app: &App, bearer: &str) -> DomainResult<Principal> {
    if api_tokens::is_api_token(bearer) {
        return api_tokens::authenticate(app, bearer).await;
    }
    if let Some(external) = identity::authenticate(app, bearer).await {
        return external;
    }
    accounts::authenticate(app, bearer).await
}

/// Who is calling: a signed-in user (with their session), or a user through an API token.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: users::Model,
    pub session_id: Option<Uuid>,
    pub token: Option<TokenGrant>,
    /// Set when signed in through an identity provider's token.
    pub external: Option<ExternalSignIn>,
}

/// How a person signed in through an identity provider.
#[derive(Clone, Debug)]
pub struct ExternalSignIn {
    pub issuer: String,
    /// The provider says a second factor was used for this sign-in (`amr`).
    pub second_factor: bool,
}

impl Principal {
    /// Whether this caller signed in with a second factor: a Guildhall session of an account
    /// with two-factor on (its sign-in needed the code), or a provider's token saying so. An
    /// account's own TOTP says nothing about a provider's sign-in, which never asked for it.
    pub fn has_second_factor(&self) -> bool {
        match &self.external {
            Some(external) => external.second_factor,
            None => self.user.totp_enabled_at.is_some(),
        }
    }

    /// FORBIDDEN when acting through an API token: changes to the account itself (its
    /// organizations, sessions, invitations and personal tokens) need a signed-in session, so
    /// a token handed to an integration never reaches past what it was made for.
    pub fn require_session(&self, what: &str) -> DomainResult<()> {
        if self.token.is_some() {
            return Err(DomainError::Forbidden {
                message: format!("{what} needs a signed-in session; API tokens cannot do it"),
                key: None,
            });
        }
        Ok(())
    }
}

/// The limits of an API token the caller acts through.
#[derive(Clone, Copy, Debug)]
pub struct TokenGrant {
    pub id: Uuid,
    /// The only organization the token may see.
    pub organization_id: Option<Uuid>,
    /// The token's keychain keys (closed under implication), when bound to one.
    pub keychain_keys: Option<crate::authz::KeySet>,
    /// When the token stops working; what it mints cannot outlive it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A fresh, time-ordered identifier: keyset pagination on ids follows creation order.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
