//! What the server counts for its operators, exposed in the Prometheus text format on a listen
//! address of its own (`--metrics-bind`), never on the public one.
//!
//! One [`Metrics`] per server, created with its store and reachable from everything that counts.
//! Counters are updated where things happen; values that already live elsewhere (the pool's
//! connections, the mail outbox, the write clock) are read when a scrape asks for them, so the
//! hot paths pay for nothing they do not count. Every label takes values from a bounded set:
//! keys come from the catalog, outcomes from the error codes, and operation names are kept to
//! the first [`MAX_OPERATION_NAMES`] seen (later ones count as `other`), so no client can grow
//! the scrape without bound by inventing names.
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Distinct operation names given a series of their own; later names count as `other`.
pub const MAX_OPERATION_NAMES: usize = 200;
/// Longest operation name kept as a label.
const MAX_OPERATION_NAME_LEN: usize = 64;

/// Times this process could not get a database connection from a pool in time (counted where
/// database errors become domain errors, which know no server; one count per process).
static ACQUIRE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Takes note of a database error on its way to becoming a domain error.
pub fn note_database_error(err: &sea_orm::DbErr) {
    if matches!(
        err,
        sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)
    ) {
        ACQUIRE_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The content type of a scrape.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    operation: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    key: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Hits and misses of one cache of values shared between requests.
#[derive(Debug, Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheCounters {
    pub fn hit(&self, count: u64) {
        self.hits.fetch_add(count, Ordering::Relaxed);
    }

    pub fn miss(&self, count: u64) {
        self.misses.fetch_add(count, Ordering::Relaxed);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

/// What a scrape reads from the running server at that moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub pool_in_use: i64,
    pub pool_idle: i64,
    pub pool_max: i64,
    /// Messages waiting to be delivered, and messages given up on.
    pub outbox_pending: i64,
    pub outbox_failed: i64,
    /// Times the write clock moved: every move drops every value shared between requests.
    pub invalidations: u64,
}

/// The server's counters; see the module documentation.
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Family<KindLabels, Histogram>,
    operation_wait_seconds: Histogram,
    operation_names: Mutex<HashSet<String>>,
    statements: Counter,
    statement_seconds: Histogram,
    statements_per_request: Histogram,
    decisions: Family<DecisionLabels, Counter>,
    pool_connections: Family<StateLabels, Gauge>,
    pool_max_connections: Gauge,
    pool_acquire_timeouts: Counter,
    cache_hits: Family<CacheLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
    caches: Mutex<Vec<(&'static str, Arc<CacheCounters>)>>,
    cache_invalidations: Counter,
    clock_reads: Family<OutcomeLabels, Counter>,
    listener_connected: Gauge,
    listener_notifications: Counter,
    outbox_messages: Family<StateLabels, Gauge>,
    mail_deliveries: Family<OutcomeLabels, Counter>,
    subscriptions_active: Gauge,
    websockets_open: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 0.25 ms to about 8 s.
    exponential_buckets(0.000_25, 2.0, 16)
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("guildhall");
        registry.register(
            "build",
            "The running version",
            Info::new(vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations answered, by operation name, kind (query, mutation, subscription, none) and outcome (ok, or the first error's code)",
            operations.clone(),
        );
        let operation_seconds =
            Family::<KindLabels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register(
            "graphql_operation_duration_seconds",
            "Time from receiving a GraphQL request to its answer, by operation name and kind (a batch's operations each count the whole batch's time)",
            operation_seconds.clone(),
        );
        let operation_wait_seconds = Histogram::new(latency_buckets());
        registry.register(
            "graphql_operation_wait_duration_seconds",
            "Time requests waited for a turn to execute (--max-concurrent-operations bounds the operations running at once, and so the demand on the pool)",
            operation_wait_seconds.clone(),
        );
        let statements = Counter::default();
        registry.register("db_statements", "SQL statements executed", statements.clone());
        let statement_seconds = Histogram::new(latency_buckets());
        registry.register(
            "db_statement_duration_seconds",
            "Time SQL statements took on their connection (after it was acquired from the pool)",
            statement_seconds.clone(),
        );
        let statements_per_request = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "db_statements_per_request",
            "SQL statements one GraphQL request executed (the shared reads of the change clock are not a request's)",
            statements_per_request.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "authz_decisions",
            "Permission checks, by key and decision (allowed, denied)",
            decisions.clone(),
        );
        let pool_connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections of the pool, by state (in_use, idle)",
            pool_connections.clone(),
        );
        let pool_max_connections = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections the pool opens",
            pool_max_connections.clone(),
        );
        let pool_acquire_timeouts = Counter::default();
        registry.register(
            "db_pool_acquire_timeouts",
            "Times no database connection could be had from a pool in time (all pools of the process)",
            pool_acquire_timeouts.clone(),
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Values served from a cache shared between requests, by cache",
            cache_hits.clone(),
        );
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_misses",
            "Values asked of a cache shared between requests and not found there (read from the database, or from the request's own loaders), by cache",
            cache_misses.clone(),
        );
        let cache_invalidations = Counter::default();
        registry.register(
            "cache_invalidations",
            "Times the database was seen to change, which drops every value shared between requests",
            cache_invalidations.clone(),
        );
        let clock_reads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "change_clock_reads",
            "Reads of the database's change clock (one before each request trusts anything kept), by outcome (ok, error)",
            clock_reads.clone(),
        );
        let listener_connected = Gauge::default();
        registry.register(
            "change_listener_connected",
            "1 while the connection listening for change announcements (--listen-database-url, PostgreSQL) is up, else 0",
            listener_connected.clone(),
        );
        let listener_notifications = Counter::default();
        registry.register(
            "change_listener_notifications",
            "Change announcements received on the listening connection",
            listener_notifications.clone(),
        );
        let outbox_messages = Family::<StateLabels, Gauge>::default();
        registry.register(
            "mail_outbox_messages",
            "Messages in the mail outbox not delivered, by state (pending, failed: given up after every attempt)",
            outbox_messages.clone(),
        );
        let mail_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "mail_delivery_attempts",
            "Attempts to deliver a message over SMTP, by outcome (sent, failed)",
            mail_deliveries.clone(),
        );
        let subscriptions_active = Gauge::default();
        registry.register(
            "subscriptions_active",
            "Live subscriptions running now",
            subscriptions_active.clone(),
        );
        let websockets_open = Gauge::default();
        registry.register(
            "websocket_connections",
            "Websocket connections open now",
            websockets_open.clone(),
        );
        Metrics {
            registry,
            operations,
            operation_seconds,
            operation_wait_seconds,
            operation_names: Mutex::new(HashSet::new()),
            statements,
            statement_seconds,
            statements_per_request,
            decisions,
            pool_connections,
            pool_max_connections,
            pool_acquire_timeouts,
            cache_hits,
            cache_misses,
            caches: Mutex::new(Vec::new()),
            cache_invalidations,
            clock_reads,
            listener_connected,
            listener_notifications,
            outbox_messages,
            mail_deliveries,
            subscriptions_active,
            websockets_open,
        }
    }

    /// The label an operation name is counted under.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        let valid = !name.is_empty()
            && name.len() <= MAX_OPERATION_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return "other".to_owned();
        }
        let mut names = self.operation_names.lock().unwrap_or_else(PoisonError::into_inner);
        if names.contains(name) {
            return name.to_owned();
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
    }

    /// One GraphQL operation answered. `name` must be the name of an operation of the document
    /// that ran (the caller checks), so a client cannot spend the name slots on names that
    /// select nothing.
    pub fn operation(&self, name: Option<&str>, kind: &str, outcome: &str, elapsed: Duration) {
        let labels = OperationLabels {
            operation: self.operation_label(name),
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.operation_seconds
            .get_or_create(&KindLabels {
                operation: labels.operation.clone(),
                kind: labels.kind.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.operations.get_or_create(&labels).inc();
    }

    /// How long a request waited for its turn to execute.
    pub fn waited_for_turn(&self, waited: Duration) {
        self.operation_wait_seconds.observe(waited.as_secs_f64());
    }

    /// One SQL statement executed.
    pub fn statement(&self, elapsed: Duration) {
        self.statements.inc();
        self.statement_seconds.observe(elapsed.as_secs_f64());
    }

    /// The statements of one finished request.
    pub fn request_statements(&self, count: u64) {
        self.statements_per_request.observe(count as f64);
    }

    /// One permission check of a catalog key.
    pub fn decision(&self, key: &str, allowed: bool) {
        let labels = DecisionLabels {
            key: key.to_owned(),
            decision: if allowed { "allowed" } else { "denied" }.to_owned(),
        };
        self.decisions.get_or_create(&labels).inc();
    }

    /// The counters of a cache called `name`, reported from then on.
    pub fn cache(&self, name: &'static str) -> Arc<CacheCounters> {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counters)) = caches.iter().find(|(n, _)| *n == name) {
            return counters.clone();
        }
        let counters = Arc::new(CacheCounters::default());
        caches.push((name, counters.clone()));
        counters
    }

    pub fn clock_read(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.clock_reads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn listener_connected(&self, connected: bool) {
        self.listener_connected.set(i64::from(connected));
    }

    pub fn listener_notified(&self) {
        self.listener_notifications.inc();
    }

    pub fn mail_delivery(&self, sent: bool) {
        let outcome = if sent { "sent" } else { "failed" };
        self.mail_deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A subscription started; it counts as active until the returned guard is dropped.
    pub fn subscription_started(self: &Arc<Self>) -> ActiveGuard {
        self.subscriptions_active.inc();
        ActiveGuard {
            gauge: self.subscriptions_active.clone(),
        }
    }

    /// A websocket opened; it counts as open until the returned guard is dropped.
    pub fn websocket_opened(self: &Arc<Self>) -> ActiveGuard {
        self.websockets_open.inc();
        ActiveGuard {
            gauge: self.websockets_open.clone(),
        }
    }

    /// The scrape: every metric in the text format, with `snapshot`'s values as of now (`None`
    /// if it could not be encoded).
    pub fn render(&self, snapshot: &Snapshot) -> Option<String> {
        let state = |name: &str| StateLabels { state: name.to_owned() };
        self.pool_connections
            .get_or_create(&state("in_use"))
            .set(snapshot.pool_in_use);
        self.pool_connections
            .get_or_create(&state("idle"))
            .set(snapshot.pool_idle);
        self.pool_max_connections.set(snapshot.pool_max);
        self.pool_acquire_timeouts
            .inner()
            .store(ACQUIRE_TIMEOUTS.load(Ordering::Relaxed), Ordering::Relaxed);
        self.outbox_messages
            .get_or_create(&state("pending"))
            .set(snapshot.outbox_pending);
        self.outbox_messages
            .get_or_create(&state("failed"))
            .set(snapshot.outbox_failed);
        self.cache_invalidations
            .inner()
            .store(snapshot.invalidations, Ordering::Relaxed);
        for (name, counters) in self.caches.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let labels = CacheLabels {
                cache: (*name).to_owned(),
            };
            self.cache_hits
                .get_or_create(&labels)
                .inner()
                .store(counters.hits(), Ordering::Relaxed);
            self.cache_misses
                .get_or_create(&labels)
                .inner()
                .store(counters.misses(), Ordering::Relaxed);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).ok()?;
        Some(text)
    }
}

/// Keeps a gauge one higher while it lives.
pub struct ActiveGuard {
    gauge: Gauge,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

tokio::task_local! {
    /// The statements of the request being served, counted by the store as they run.
    static REQUEST_STATEMENTS: Arc<AtomicU64>;
}

/// Counts the statements `future` runs, wherever its work is driven (loaders' batches spawned
/// for the request outside [`crate::graphql::batch::drive`] are not counted).
pub async fn counting_statements<F: Future>(counter: Arc<AtomicU64>, future: F) -> F::Output {
    REQUEST_STATEMENTS.scope(counter, future).await
}

/// The counter of the request being served here, if any.
pub fn request_counter() -> Option<Arc<AtomicU64>> {
    REQUEST_STATEMENTS.try_with(Arc::clone).ok()
}

/// Adds one statement to the request being served here, if any.
pub fn count_request_statement() {
    let _ = REQUEST_STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded_and_checked() {
        let metrics = Metrics::new();
        for i in 0..MAX_OPERATION_NAMES + 50 {
            metrics.operation(Some(&format!("Op{i}")), "query", "ok", Duration::from_millis(1));
        }
        metrics.operation(Some("has space"), "query", "ok", Duration::from_millis(1));
        metrics.operation(None, "query", "ok", Duration::from_millis(1));
        let text = metrics.render(&Snapshot::default()).expect("encoded");
        let series = text
            .lines()
            .filter(|l| l.starts_with("guildhall_graphql_operations_total{"))
            .count();
        // The first names, `other` (the late names and the invalid one) and `anonymous`.
        assert_eq!(series, MAX_OPERATION_NAMES + 2, "{text}");
        assert!(text.contains("operation=\"other\""));
        assert!(!text.contains("has space"));
    }

    #[test]
    fn a_scrape_reports_the_snapshot_and_the_caches() {
        let metrics = Metrics::new();
        let users = metrics.cache("users");
        users.hit(3);
        users.miss(1);
        let text = metrics
            .render(&Snapshot {
                pool_in_use: 2,
                pool_idle: 5,
                pool_max: 8,
                outbox_pending: 4,
                outbox_failed: 1,
                invalidations: 9,
            })
            .expect("encoded");
        for line in [
            "guildhall_cache_hits_total{cache=\"users\"} 3",
            "guildhall_cache_misses_total{cache=\"users\"} 1",
            "guildhall_db_pool_connections{state=\"in_use\"} 2",
            "guildhall_db_pool_max_connections 8",
            "guildhall_mail_outbox_messages{state=\"pending\"} 4",
            "guildhall_cache_invalidations_total 9",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
