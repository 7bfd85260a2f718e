//! Command line and environment: every flag of `serve` can also be set by a variable.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "guildhall", version, about = "Organization workspaces over GraphQL")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply pending migrations and serve the API.
    Serve(Box<ServeArgs>),
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Seed a demo organization (people in every built-in role, workspaces, a custom role and
    /// keychain, an invitation, a service account with a token) and print how to sign in.
    Demo {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Work with the audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write a consistent copy of an SQLite database to PATH while it is in use (`VACUUM INTO`).
    /// PATH must not exist. For PostgreSQL use `pg_dump`.
    Backup {
        path: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum AuditAction {
    /// Write every audit event (of every organization) that occurred at or after `--since` to
    /// standard output as JSON lines, oldest first, for long-term storage.
    Export {
        /// RFC 3339, e.g. `2026-01-01T00:00:00Z`.
        #[arg(long)]
        since: chrono::DateTime<chrono::Utc>,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last migration.
    Down,
    /// List migrations and whether they are applied.
    Status,
}

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// SQLite (`sqlite://file.db?mode=rwc`) or PostgreSQL (`postgres://user@host/db`) URL.
    #[arg(
        long,
        env = "GUILDHALL_DATABASE_URL",
        default_value = "sqlite://guildhall.db?mode=rwc"
    )]
    pub database_url: String,
    /// Size of the connection pool. 0: four per core on SQLite (each connection keeps its own
    /// page and statement caches, and writers take turns anyway), 16 on PostgreSQL.
    #[arg(long, env = "GUILDHALL_DATABASE_MAX_CONNECTIONS", default_value_t = 0)]
    pub database_max_connections: u32,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GUILDHALL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address of the operators' listener, serving `/metrics` (Prometheus text format); kept
    /// apart from `--bind` so it is never public by accident. `off` serves no metrics.
    #[arg(long, env = "GUILDHALL_METRICS_BIND", default_value = "127.0.0.1:9464")]
    pub metrics_bind: String,
    /// Secret for signing access tokens (at least 32 bytes). Generated and kept in the
    /// database when absent.
    #[arg(long, env = "GUILDHALL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "GUILDHALL_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: i64,
    /// Lifetime of a session's refresh tokens, in seconds.
    #[arg(long, env = "GUILDHALL_REFRESH_TOKEN_TTL", default_value_t = 2_592_000)]
    pub refresh_token_ttl: i64,
    /// Seconds a rotated refresh token still yields the same successor (two tabs refreshing at
    /// once); presented later, it ends the session as a stolen token would.
    #[arg(long, env = "GUILDHALL_REFRESH_REUSE_INTERVAL", default_value_t = 5)]
    pub refresh_reuse_interval: i64,
    /// Lifetime of invitations, in hours.
    #[arg(long, env = "GUILDHALL_INVITATION_TTL_HOURS", default_value_t = 72)]
    pub invitation_ttl_hours: i64,
    /// Notification mails one organization may queue a day (`sendNotification`, all
    /// categories together).
    #[arg(long, env = "GUILDHALL_NOTIFICATIONS_PER_DAY", default_value_t = 5_000)]
    pub notifications_per_day: u64,
    /// How long a request to recover ownership through the recovery contact waits, in hours,
    /// while every owner is told and may cancel it.
    #[arg(long, env = "GUILDHALL_OWNER_RECOVERY_WAIT_HOURS", default_value_t = 168)]
    pub owner_recovery_wait_hours: i64,
    /// Origins allowed to call the API from a browser, comma-separated. None: same origin only.
    #[arg(long, env = "GUILDHALL_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Public base URL of the web app, used in links such as invitation URLs.
    #[arg(long, env = "GUILDHALL_PUBLIC_URL", default_value = "http://localhost:8080")]
    pub public_url: String,
    /// Public base URL of this server, for links it answers itself (the unsubscribe page of
    /// notifications); the web app's `--public-url` when omitted.
    #[arg(long, env = "GUILDHALL_API_URL")]
    pub api_url: Option<String>,
    /// Whether GraphQL introspection is allowed (GraphiQL needs it).
    #[arg(long, env = "GUILDHALL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Deepest selection an operation may have.
    #[arg(long, env = "GUILDHALL_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// Highest cost an operation (and a batch together) may have; connections multiply their
    /// selection by `first` (see `graphql::cost`).
    #[arg(
        long,
        env = "GUILDHALL_MAX_QUERY_COST",
        alias = "max-query-complexity",
        default_value_t = 50_000
    )]
    pub max_query_cost: usize,
    /// Largest response body, in bytes; a larger one is replaced by an error.
    #[arg(long, env = "GUILDHALL_MAX_RESPONSE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_response_bytes: usize,
    /// Longest an operation may run, in milliseconds; then it is stopped with an error.
    #[arg(long, env = "GUILDHALL_MAX_EXECUTION_MS", default_value_t = 10_000)]
    pub max_execution_ms: u64,
    /// How often, in milliseconds, live subscriptions look for changes made by other processes
    /// (a change made through this process reaches them at once).
    #[arg(long, env = "GUILDHALL_CHANGE_POLL_MS", default_value_t = 500)]
    pub change_poll_ms: u64,
    /// PostgreSQL only: a direct connection (never through a transaction-pooling PgBouncer,
    /// which cannot pass LISTEN) on which to hear other processes' commits announced, so live
    /// subscriptions learn of them at once instead of at the next poll. Freshness never rests
    /// on it: a lost announcement only delays a live update until the next poll.
    #[arg(long, env = "GUILDHALL_LISTEN_DATABASE_URL", hide_env_values = true)]
    pub listen_database_url: Option<String>,
    /// Operations one websocket connection may run at once.
    #[arg(long, env = "GUILDHALL_MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 50)]
    pub max_subscriptions_per_connection: usize,
    /// A key catalog file (JSON) replacing the built-in one.
    #[arg(long, env = "GUILDHALL_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Failed sign-ins per email within the window before RATE_LIMITED.
    #[arg(long, env = "GUILDHALL_LOGIN_MAX_FAILURES_PER_EMAIL", default_value_t = 5)]
    pub login_max_failures_per_email: u64,
    /// Failed sign-ins per client address within the window before RATE_LIMITED.
    #[arg(long, env = "GUILDHALL_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50)]
    pub login_max_failures_per_address: u64,
    /// Window for counting failed sign-ins, in seconds.
    #[arg(long, env = "GUILDHALL_LOGIN_FAILURE_WINDOW", default_value_t = 900)]
    pub login_failure_window: i64,
    /// Accounts created per client address within the sign-up window before RATE_LIMITED.
    #[arg(long, env = "GUILDHALL_SIGN_UPS_PER_ADDRESS", default_value_t = 20)]
    pub sign_ups_per_address: u64,
    /// Window for counting sign-ups per client address, in seconds.
    #[arg(long, env = "GUILDHALL_SIGN_UP_WINDOW", default_value_t = 3600)]
    pub sign_up_window: i64,
    /// Take the client address from X-Forwarded-For (only behind a trusted proxy).
    #[arg(long, env = "GUILDHALL_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,
    /// Plan limits as JSON overriding the defaults, e.g. `{"FREE": {"admins": 3, "members": 25,
    /// "customRoles": 10, "customKeychains": 10, "workspaces": 5}}`.
    #[arg(long, env = "GUILDHALL_PLAN_LIMITS")]
    pub plan_limits: Option<String>,
    /// SMTP server for outgoing mail, e.g. `smtps://user:password@mail.example.com`. Without it
    /// messages stay in the outbox table.
    #[arg(long, env = "GUILDHALL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail.
    #[arg(long, env = "GUILDHALL_MAIL_FROM", default_value = "Guildhall <no-reply@localhost>")]
    pub mail_from: String,
    /// Read every loaded row afresh for each request instead of sharing rows between requests
    /// while the database is unchanged (for measuring what the sharing buys).
    #[arg(long, env = "GUILDHALL_NO_SHARED_LOADS", hide = true)]
    pub no_shared_loads: bool,
    /// GraphQL operations executed at once; more wait their turn. 0: two per core. Bounds the
    /// memory of simultaneous large responses; on a few cores more at once only adds waiting.
    #[arg(long, env = "GUILDHALL_MAX_CONCURRENT_OPERATIONS", default_value_t = 0)]
    pub max_concurrent_operations: usize,
    /// Days audit events are kept; 0 keeps them forever. Export them first with
    /// `guildhall audit export --since`.
    #[arg(long, env = "GUILDHALL_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: i64,
    /// Days an account whose address was never verified is kept after sign-up (0 keeps them).
    #[arg(long, env = "GUILDHALL_UNVERIFIED_ACCOUNT_DAYS", default_value_t = 7)]
    pub unverified_account_days: i64,
    /// Days an invitation that was never accepted is kept after it expired.
    #[arg(long, env = "GUILDHALL_INVITATION_RETENTION_DAYS", default_value_t = 30)]
    pub invitation_retention_days: i64,
    /// Days delivered (or given-up) mail is kept.
    #[arg(long, env = "GUILDHALL_MAIL_RETENTION_DAYS", default_value_t = 30)]
    pub mail_retention_days: i64,
    /// Minutes between two prunes of rows past retention (expired refresh tokens and counted-out
    /// failed sign-ins go too); 0 never prunes.
    #[arg(long, env = "GUILDHALL_RETENTION_INTERVAL_MINUTES", default_value_t = 60)]
    pub retention_interval_minutes: u64,
    /// Seconds between two removals of role bindings that have ended (decisions ignore them from
    /// their end on; this removes them and records `role.expire`).
    #[arg(long, env = "GUILDHALL_GRANT_EXPIRY_SWEEP_SECONDS", default_value_t = 30)]
    pub grant_expiry_sweep_seconds: u64,
    /// Export traces over OTLP/HTTP to this collector (`http://127.0.0.1:4318`, or its full
    /// `/v1/traces` URL); off when absent. A caller's `traceparent` is honoured.
    #[arg(long, env = "GUILDHALL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The OTLP encoding: `http/protobuf` or `http/json`.
    #[arg(long, env = "GUILDHALL_OTLP_PROTOCOL", default_value = "http/protobuf")]
    pub otlp_protocol: String,
    /// Whether a caller's `traceparent` makes the request part of the caller's trace (its id,
    /// its sampling decision); `false` starts a trace of our own for every request, for a server
    /// facing callers it does not trust.
    #[arg(long, env = "GUILDHALL_OTLP_HONOUR_TRACEPARENT", default_value_t = true, action = clap::ArgAction::Set)]
    pub otlp_honour_traceparent: bool,
    /// The `service.name` spans are exported under.
    #[arg(long, env = "GUILDHALL_OTLP_SERVICE_NAME", default_value = "guildhall")]
    pub otlp_service_name: String,
    /// An OpenID Connect issuer whose bearer tokens sign people in: the exact `iss` of its
    /// tokens (e.g. `https://example.eu.auth0.com/`). Needs `--oidc-audience` and `--oidc-jwks`.
    /// Several issuers go in a file given to `--oidc-providers`.
    #[arg(long, env = "GUILDHALL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The `aud` the issuer's tokens must name to be meant for Guildhall.
    #[arg(long, env = "GUILDHALL_OIDC_AUDIENCE", requires = "oidc_issuer")]
    pub oidc_audience: Option<String>,
    /// The issuer's signing keys: a JWKS file, or its URL (`https://`; `http://` only on the
    /// loopback interface), e.g. `https://example.eu.auth0.com/.well-known/jwks.json`.
    #[arg(long, env = "GUILDHALL_OIDC_JWKS", requires = "oidc_issuer")]
    pub oidc_jwks: Option<String>,
    /// The claim holding the person's address.
    #[arg(long, env = "GUILDHALL_OIDC_EMAIL_CLAIM", default_value = "email")]
    pub oidc_email_claim: String,
    /// When the issuer's address counts as verified: `claim` (its `email_verified` is true),
    /// `always` (it only issues verified addresses) or `never` (accounts get no address).
    #[arg(long, env = "GUILDHALL_OIDC_EMAIL_VERIFIED", default_value = "claim")]
    pub oidc_email_verified: String,
    /// Whether a person whose address the issuer vouches for signs in as the existing Guildhall
    /// account holding it (moving password accounts to the provider); otherwise CONFLICT.
    #[arg(long, env = "GUILDHALL_OIDC_LINK_EXISTING_ACCOUNTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub oidc_link_existing_accounts: bool,
    /// A JSON file listing issuers: `[{"issuer": …, "audience": …, "jwks": …, "emailClaim":
    /// "email", "emailVerified": "claim"}]`, beside or instead of `--oidc-issuer`.
    #[arg(long, env = "GUILDHALL_OIDC_PROVIDERS")]
    pub oidc_providers: Option<PathBuf>,
    /// Least seconds between two fetches of an issuer's JWKS prompted by a token naming a key
    /// it lacks: made-up key ids cannot make the server hammer the provider.
    #[arg(long, env = "GUILDHALL_OIDC_JWKS_MIN_REFRESH_SECONDS", default_value_t = 30)]
    pub oidc_jwks_min_refresh_seconds: i64,
    /// Seconds a fetched JWKS is trusted before it is fetched again (withdrawn keys stop
    /// counting after at most this long).
    #[arg(long, env = "GUILDHALL_OIDC_JWKS_MAX_AGE_SECONDS", default_value_t = 3600)]
    pub oidc_jwks_max_age_seconds: i64,
    /// Whether people may sign up and sign in with a Guildhall password; `false` leaves only
    /// the identity providers (signUp, logIn, refreshSession and password resets answer
    /// FORBIDDEN).
    #[arg(long, env = "GUILDHALL_LOCAL_ACCOUNTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub local_accounts: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GUILDHALL_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl ServeArgs {
    /// The defaults, for embedding the server (tests) without a command line.
    pub fn defaults_for(database_url: &str) -> ServeArgs {
        let cli = Cli::parse_from(["guildhall", "serve", "--database-url", database_url]);
        match cli.command {
            Command::Serve(args) => *args,
            _ => unreachable!("parsed a serve command"),
        }
    }
}
