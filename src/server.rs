//! Assembling a running server from its configuration.
use std::sync::Arc;

use chrono::Duration;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::authz::Catalog;
use crate::config::ServeArgs;
use crate::domain::limits::PlanLimits;
use crate::domain::tokens::AccessTokens;
use crate::domain::{App, Clock, Settings, builtins, mailer, secrets};
use crate::graphql::{self, QueryLimits};
use crate::http::{self, HttpConfig};
use crate::store::Store;
use crate::store::entities::settings;

/// Why the server could not start; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(String),
    #[error("cannot apply migrations: {0}")]
    Migrations(String),
    #[error("cannot read the key catalog {path}: {reason}")]
    CatalogFile { path: String, reason: String },
    #[error("the key catalog is invalid: {0}")]
    Catalog(#[from] crate::authz::CatalogError),
    #[error("GUILDHALL_JWT_SECRET must be at least 32 bytes long")]
    WeakSecret,
    #[error("invalid setting: {0}")]
    Setting(String),
}

/// A built server: the shared application state and its router.
pub struct Server {
    pub app: Arc<App>,
    pub router: axum::Router,
    /// The operators' surface (`/metrics`), for a listen address of its own.
    pub metrics_router: axum::Router,
}

const JWT_SECRET_SETTING: &str = "jwt_secret";

/// The configured secret, or the one kept in the database (generated on first start).
async fn jwt_secret(store: &Store, configured: Option<&str>) -> Result<String, StartError> {
    if let Some(secret) = configured {
        if secret.len() < 32 {
            return Err(StartError::WeakSecret);
        }
        return Ok(secret.to_owned());
    }
    let db = |e: sea_orm::DbErr| StartError::Database(e.to_string());
    // Insert-if-absent, then read: concurrent first starts agree on one secret.
    settings::Entity::insert(settings::ActiveModel {
        key: Set(JWT_SECRET_SETTING.to_owned()),
        value: Set(secrets::random_hex(32)),
        created_at: Set(chrono::Utc::now()),
    })
    .on_conflict(OnConflict::column(settings::Column::Key).do_nothing().to_owned())
    .exec_without_returning(&store.conn)
    .await
    .map_err(db)?;
    let row = settings::Entity::find_by_id(JWT_SECRET_SETTING.to_owned())
        .one(&store.conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StartError::Database("the generated secret was not stored".to_owned()))?;
    tracing::warn!(
        "no GUILDHALL_JWT_SECRET configured: using a secret generated and kept in the database; set one in production"
    );
    Ok(row.value)
}

fn load_catalog(args: &ServeArgs) -> Result<Catalog, StartError> {
    match &args.catalog {
        None => Ok(Catalog::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| StartError::CatalogFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(Catalog::from_json(&text)?)
        }
    }
}

/// Reads the database's change clock every `interval` while a live subscription waits on the
/// write clock (and not at all otherwise), so subscribers learn of commits made by other
/// processes within about `interval`. Stops once the app is gone.
fn spawn_change_watch(app: &Arc<App>, interval: std::time::Duration) {
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(app) = app.upgrade() else { return };
            if app.store.writes.watched()
                && let Err(err) = app.store.observe_changes().await
            {
                tracing::warn!(error = %err, "reading the change clock for live subscriptions");
            }
        }
    });
}

/// Listens on `url` (a direct PostgreSQL connection) for commits announced on the change
/// channel, and reads the change clock at once when some come while a live subscription waits,
/// so subscribers hear of other processes' commits within a round trip instead of a poll
/// interval. Announcements that arrive together cost one read. When the connection is lost it
/// says so (log, `change_listener_connected` 0), reconnects itself with a backoff growing to
/// 5 s (reset once a connection has lasted 10 s), and reads the clock after each reconnection,
/// as announcements made meanwhile are lost. Stops once the app is gone.
fn spawn_change_listener(app: &Arc<App>, url: String) {
    use sea_orm::sqlx::postgres::PgListener;
    const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut backoff = FIRST_BACKOFF;
        let observe = |app: &Arc<App>| {
            let store = app.store.clone();
            async move {
                if store.writes.watched()
                    && let Err(err) = store.observe_changes().await
                {
                    tracing::warn!(error = %err, "reading the change clock after an announcement");
                }
            }
        };
        loop {
            let Some(metrics) = app.upgrade().map(|app| app.store.metrics.clone()) else {
                return;
            };
            let listening = async {
                let mut listener = PgListener::connect(&url).await?;
                // A lost connection is reported by `try_recv`, and reconnecting is done here.
                listener.eager_reconnect(false);
                listener.listen(migration::CHANGE_CHANNEL).await?;
                Ok::<_, sea_orm::sqlx::Error>(listener)
            }
            .await;
            match listening {
                Ok(mut listener) => {
                    let connected = std::time::Instant::now();
                    metrics.listener_connected(true);
                    if let Some(app) = app.upgrade() {
                        observe(&app).await;
                    }
                    loop {
                        // Wakes every second to notice that the app is gone. Cutting a read
                        // short loses nothing: what was read stays in the connection's buffer.
                        match tokio::time::timeout(std::time::Duration::from_secs(1), listener.try_recv()).await {
                            Err(_elapsed) => {
                                if app.strong_count() == 0 {
                                    return;
                                }
                            }
                            Ok(Ok(Some(_))) => {
                                metrics.listener_notified();
                                // Whatever else has arrived by now is covered by the same read.
                                while let Ok(Ok(Some(_))) =
                                    tokio::time::timeout(std::time::Duration::ZERO, listener.try_recv()).await
                                {
                                    metrics.listener_notified();
                                }
                                let Some(app) = app.upgrade() else { return };
                                observe(&app).await;
                            }
                            Ok(Ok(None)) => {
                                tracing::warn!("the change listener lost its connection; reconnecting");
                                break;
                            }
                            Ok(Err(err)) => {
                                tracing::warn!(error = %err, "the change listener failed; reconnecting");
                                break;
                            }
                        }
                    }
                    metrics.listener_connected(false);
                    if connected.elapsed() >= std::time::Duration::from_secs(10) {
                        backoff = FIRST_BACKOFF;
                    }
                }
                Err(err) => {
                    metrics.listener_connected(false);
                    tracing::warn!(error = %err, "cannot listen for change announcements; retrying");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        }
    });
}

/// What the retention flags keep.
pub fn retention_policy(args: &ServeArgs) -> Result<crate::domain::retention::Policy, StartError> {
    for (name, days) in [
        ("audit retention", args.audit_retention_days),
        ("invitation retention", args.invitation_retention_days),
        ("mail retention", args.mail_retention_days),
        ("unverified account retention", args.unverified_account_days),
    ] {
        if days < 0 {
            return Err(StartError::Setting(format!("the {name} must not be negative")));
        }
    }
    Ok(crate::domain::retention::Policy {
        audit: (args.audit_retention_days > 0).then(|| Duration::days(args.audit_retention_days)),
        invitations: Duration::days(args.invitation_retention_days),
        mail: Duration::days(args.mail_retention_days),
        unverified_accounts: Duration::days(args.unverified_account_days),
        ..Default::default()
    })
}

/// Connects, migrates, synchronises built-ins and builds the router.
pub async fn build(args: &ServeArgs) -> Result<Server, StartError> {
    let catalog = load_catalog(args)?;
    for (name, value) in [
        ("access token lifetime", args.access_token_ttl),
        ("refresh token lifetime", args.refresh_token_ttl),
        ("invitation lifetime", args.invitation_ttl_hours),
        ("owner recovery wait", args.owner_recovery_wait_hours),
        ("login failure window", args.login_failure_window),
        ("sign-up window", args.sign_up_window),
    ] {
        if value <= 0 {
            return Err(StartError::Setting(format!("the {name} must be positive")));
        }
    }
    if let Some(url) = &args.listen_database_url
        && !url.starts_with("postgres")
    {
        return Err(StartError::Setting(
            "--listen-database-url must be a PostgreSQL URL (postgres://…)".to_owned(),
        ));
    }
    let store = Store::connect(&args.database.database_url, args.database.database_max_connections)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    store
        .migrate_up()
        .await
        .map_err(|e| StartError::Migrations(e.to_string()))?;
    let secret = jwt_secret(&store, args.jwt_secret.as_deref()).await?;
    builtins::sync(&store, &catalog, chrono::Utc::now())
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let settings = Settings {
        public_url: args.public_url.trim_end_matches('/').to_owned(),
        api_url: args
            .api_url
            .as_deref()
            .unwrap_or(&args.public_url)
            .trim_end_matches('/')
            .to_owned(),
        access_token_ttl: Duration::seconds(args.access_token_ttl),
        refresh_token_ttl: Duration::seconds(args.refresh_token_ttl),
        refresh_reuse_interval: Duration::seconds(args.refresh_reuse_interval.max(0)),
        invitation_ttl: Duration::hours(args.invitation_ttl_hours),
        owner_recovery_wait: Duration::hours(args.owner_recovery_wait_hours),
        notifications_per_day: args.notifications_per_day,
        login_max_failures_per_email: args.login_max_failures_per_email,
        login_max_failures_per_address: args.login_max_failures_per_address,
        login_failure_window: Duration::seconds(args.login_failure_window),
        sign_ups_per_address: args.sign_ups_per_address,
        sign_up_window: Duration::seconds(args.sign_up_window),
        plan_limits: match &args.plan_limits {
            Some(text) => PlanLimits::from_json(text).map_err(|e| StartError::Setting(format!("plan limits: {e}")))?,
            None => PlanLimits::default(),
        },
        local_accounts: args.local_accounts,
    };
    let identity = identity_providers(args).await?;
    if !args.local_accounts && identity.is_empty() {
        return Err(StartError::Setting(
            "--local-accounts=false needs an identity provider (--oidc-issuer or --oidc-providers)".to_owned(),
        ));
    }
    let app = Arc::new(App {
        standing: crate::domain::standing::Standing::new(store.writes.clone(), &store.metrics),
        store,
        builtins: builtins::Index::new(&catalog),
        catalog: Arc::new(catalog),
        tokens: AccessTokens::new(secret.as_bytes()),
        settings,
        clock: Clock::default(),
        identity,
    });
    let limits = QueryLimits {
        max_depth: args.max_query_depth,
        max_cost: args.max_query_cost,
        introspection: args.introspection,
    };
    let schemas = http::Schemas {
        queries: graphql::build(app.clone(), limits),
        mutations: graphql::build_for_mutations(app.clone(), limits),
    };
    // The served schema's SDL, read once: the cost model and the response shape both read it.
    let served_sdl = schemas.queries.sdl();
    let router = http::router(
        app.clone(),
        schemas,
        HttpConfig {
            cors_origins: args.cors_origins.clone(),
            trust_forwarded_for: args.trust_forwarded_for,
            cost: Arc::new(graphql::cost::CostModel::from_sdl(
                &served_sdl,
                limits.max_cost,
                limits.max_depth,
            )),
            shape: Arc::new(graphql::shape::ResponseShape::from_sdl(&served_sdl)),
            share_loaded_rows: !args.no_shared_loads,
            max_response_bytes: args.max_response_bytes,
            max_execution: std::time::Duration::from_millis(args.max_execution_ms.max(1)),
            max_subscriptions_per_connection: args.max_subscriptions_per_connection,
            max_concurrent_operations: match args.max_concurrent_operations {
                0 => 2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                n => n,
            },
        },
    );
    spawn_change_watch(&app, std::time::Duration::from_millis(args.change_poll_ms.max(10)));
    if let Some(url) = &args.listen_database_url {
        if app.store.backend() != sea_orm::DbBackend::Postgres {
            return Err(StartError::Setting(
                "--listen-database-url is for a PostgreSQL database".to_owned(),
            ));
        }
        // Commits are announced from now on (see the change-announcements migration).
        app.store
            .announce_changes()
            .await
            .map_err(|e| StartError::Database(e.to_string()))?;
        spawn_change_listener(&app, url.clone());
    }
    crate::domain::bindings::spawn_expiry(
        &app,
        std::time::Duration::from_secs(args.grant_expiry_sweep_seconds.max(1)),
    );
    if args.retention_interval_minutes > 0 {
        crate::domain::retention::spawn(
            app.clone(),
            retention_policy(args)?,
            std::time::Duration::from_secs(args.retention_interval_minutes.saturating_mul(60)),
        );
    }
    if let Some(url) = &args.smtp_url {
        mailer::spawn_worker(
            app.clone(),
            mailer::SmtpSettings {
                url: url.clone(),
                from: args.mail_from.clone(),
            },
        )
        .map_err(|e| StartError::Setting(e.to_string()))?;
    }
    let metrics_router = http::metrics_router(app.clone());
    Ok(Server {
        app,
        router,
        metrics_router,
    })
}

/// The identity providers of `--oidc-issuer` and `--oidc-providers`, their keys read.
async fn identity_providers(args: &ServeArgs) -> Result<crate::domain::identity::Providers, StartError> {
    use crate::domain::identity::{EmailTrust, ProviderConfig, Providers};
    let mut configs: Vec<ProviderConfig> = Vec::new();
    if let Some(path) = &args.oidc_providers {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Setting(format!("--oidc-providers {}: {e}", path.display())))?;
        configs = serde_json::from_str(&text)
            .map_err(|e| StartError::Setting(format!("--oidc-providers {}: {e}", path.display())))?;
    }
    if let Some(issuer) = &args.oidc_issuer {
        let (Some(audience), Some(jwks)) = (&args.oidc_audience, &args.oidc_jwks) else {
            return Err(StartError::Setting(
                "--oidc-issuer needs --oidc-audience and --oidc-jwks".to_owned(),
            ));
        };
        configs.push(ProviderConfig {
            issuer: issuer.clone(),
            audience: audience.clone(),
            jwks: jwks.clone(),
            email_claim: args.oidc_email_claim.clone(),
            email_verified: args
                .oidc_email_verified
                .parse::<EmailTrust>()
                .map_err(|e| StartError::Setting(format!("--oidc-email-verified: {e}")))?,
            link_existing_accounts: args.oidc_link_existing_accounts,
        });
    }
    if configs.is_empty() {
        return Ok(Providers::none());
    }
    if args.oidc_jwks_min_refresh_seconds < 5 || args.oidc_jwks_max_age_seconds < args.oidc_jwks_min_refresh_seconds {
        return Err(StartError::Setting(
            "--oidc-jwks-min-refresh-seconds must be at least 5 (made-up key ids would otherwise make a fetch each), \
             and --oidc-jwks-max-age-seconds at least as long"
                .to_owned(),
        ));
    }
    Providers::start(
        configs,
        Duration::seconds(args.oidc_jwks_min_refresh_seconds),
        Duration::seconds(args.oidc_jwks_max_age_seconds),
        chrono::Utc::now(),
    )
    .await
    .map_err(StartError::Setting)
}
