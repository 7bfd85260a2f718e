//! Persistence: connecting to SQLite or PostgreSQL, migrations, write transactions, entities.
pub mod entities;
pub mod shared;

pub use shared::Shared;
pub mod fixtures;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

/// The shared connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub conn: DatabaseConnection,
    /// SQL statements executed through this pool so far (tests and benchmarks read it).
    pub statements: Arc<AtomicU64>,
    /// Moves whenever the database's change clock is seen to move, so that caches of database
    /// rows know when to drop them.
    pub writes: Arc<WriteClock>,
    /// Reads of the database's change clock, shared by callers that arrive together.
    clock_reads: Arc<ClockReads>,
    /// What the server counts for its operators; statements are counted here as they run.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Reads of the change clock shared between concurrent callers. A caller needs a read that
/// *starts* after it asked (only that one is sure to see every commit made before); callers that
/// arrive while a read is running wait for the next one, which starts as soon as it finishes, so
/// under load one statement serves many requests. Reads run in a task of their own: a caller
/// that gives up does not strand the others.
#[derive(Debug)]
struct ClockReads {
    rounds: Mutex<Rounds>,
    /// The last finished round and its outcome (an error's text).
    finished: tokio::sync::watch::Sender<(u64, Result<(), String>)>,
}

#[derive(Debug, Default)]
struct Rounds {
    started: u64,
    running: bool,
    /// Someone asked while the running round was under way.
    another: bool,
}

impl Default for ClockReads {
    fn default() -> Self {
        ClockReads {
            rounds: Mutex::new(Rounds::default()),
            finished: tokio::sync::watch::channel((0, Ok(()))).0,
        }
    }
}

/// A generation number of the database's contents as this process knows them. A value read
/// from the database may be reused for as long as the generation read *before* reading it is
/// current.
///
/// The generation moves whenever the database's change clock (`change_clock.seq`, moved by
/// triggers in the same transaction as every change to a kept table, whoever makes it) is seen
/// to have moved. Every request reads the database's clock once before it trusts anything kept
/// ([`Store::observe_changes`]), and so does every write transaction right after its commit:
/// a request that starts after a commit, in any process, never sees what was kept from before
/// it. No listening connection is trusted, so none can fail silently.
#[derive(Debug)]
pub struct WriteClock {
    generation: AtomicU64,
    /// The generation, for those who wait for it to move (live subscriptions).
    moved: tokio::sync::watch::Sender<u64>,
    /// The highest database clock seen; moved only under `observing`, after the generation.
    seen: AtomicI64,
    observing: Mutex<()>,
}

impl Default for WriteClock {
    fn default() -> Self {
        WriteClock::new()
    }
}

impl WriteClock {
    pub fn new() -> WriteClock {
        WriteClock {
            generation: AtomicU64::new(1),
            moved: tokio::sync::watch::channel(1).0,
            seen: AtomicI64::new(i64::MIN),
            observing: Mutex::new(()),
        }
    }

    /// The current generation (always `Some`: kept for callers that may one day be told that
    /// nothing may be reused).
    pub fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::Acquire))
    }

    /// Records that the database changed: every value read before is stale.
    pub fn tick(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.moved.send_replace(generation);
    }

    /// A receiver told each time the generation moves: by a commit of this process at once, by
    /// any other writer once the database's clock is read (the server reads it every
    /// `--change-poll-ms` while anyone watches).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.moved.subscribe()
    }

    /// Whether anyone waits for the generation to move.
    pub fn watched(&self) -> bool {
        self.moved.receiver_count() > 0
    }

    /// Takes note of the database's change clock. Returns only once the generation reflects
    /// it: a caller that goes on to read kept values never gets one from before `seq`.
    pub fn observe(&self, seq: i64) {
        if self.seen.load(Ordering::Acquire) >= seq {
            return;
        }
        let _turn = self.observing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.seen.load(Ordering::Acquire) < seq {
            // Generation first: whoever sees the new clock value also sees the new generation.
            self.tick();
            self.seen.store(seq, Ordering::Release);
        }
    }
}

/// A write transaction: a database transaction after whose commit the write clock is brought
/// up to date, so the rest of the request sees what it wrote. It can be used wherever a
/// connection can.
pub struct WriteTx {
    tx: DatabaseTransaction,
    store: Store,
    /// The transaction as a span of the request's trace, from BEGIN to its end (traces only).
    span: tracing::Span,
}

/// A run whose writes are judged and then undone (a preview): each write transaction opened
/// inside [`dry_run`] is shown to the hook when it begins and when it would commit, and is then
/// rolled back instead. The code that wrote it goes on as if it had committed.
#[async_trait::async_trait]
pub trait DryRun: Send + Sync {
    /// Right after BEGIN, before the run's first statement.
    async fn began(&self, tx: &DatabaseTransaction) -> Result<(), DbErr>;
    /// At what would be the commit, with every write of the run in place.
    async fn finishing(&self, tx: &DatabaseTransaction) -> Result<(), DbErr>;
}

tokio::task_local! {
    static DRY_RUN: Arc<dyn DryRun>;
}

/// Runs `work` with every write transaction it opens rolled back at its commit (see [`DryRun`]).
pub async fn dry_run<F: std::future::Future>(hook: Arc<dyn DryRun>, work: F) -> F::Output {
    DRY_RUN.scope(hook, work).await
}

fn dry_run_hook() -> Option<Arc<dyn DryRun>> {
    DRY_RUN.try_with(Arc::clone).ok()
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        if let Some(hook) = dry_run_hook() {
            let seen = hook.finishing(&self.tx).await;
            self.span.record("outcome", "previewed");
            self.tx.rollback().await?;
            return seen;
        }
        let result = self.tx.commit().await;
        self.span
            .record("outcome", if result.is_ok() { "committed" } else { "failed" });
        // Even a failed commit may have reached the database: look either way. Only a change to
        // a kept table moves the clock (a refusal's audit event or a failed sign-in does not).
        if self.store.observe_changes().await.is_err() {
            self.store.writes.tick();
        }
        result
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.span.record("outcome", "rolled back");
        self.tx.rollback().await
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.tx.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.tx.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.tx.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.tx.query_all_raw(stmt).await
    }
}

/// How long an SQLite connection waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Connects with the settings every deployment needs (`max_connections` 0 picks a size for
    /// the backend): several pooled connections, and on
    /// SQLite WAL, a busy timeout and enforced foreign keys.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let max_connections = match max_connections {
            0 if url.starts_with("sqlite:") => {
                4 * std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(1)
            }
            0 => 16,
            n => n,
        };
        let mut options = ConnectOptions::new(url.to_owned());
        // SeaORM would otherwise cap an SQLite pool at a single connection.
        options
            .max_connections(max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(15))
            .sqlx_logging(false)
            // A connection is checked only after it sat idle for a while (a server or a proxy
            // may have dropped it); checking on every checkout cost a round trip per statement.
            .test_before_acquire_if_idle_for(Duration::from_secs(60))
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
                    // 512 KiB of page cache per connection instead of 2 MiB: the operating system
                    // caches the file as well, and a pool of many connections would otherwise
                    // hold tens of megabytes of copies.
                    .pragma("cache_size", "-512")
                    // Prepared statements are kept per connection, and lists of ids make many
                    // distinct texts; a small cache keeps the hot ones without growing large.
                    .statement_cache_capacity(24)
                    // Rows of a large result are handed over without waiting for the reader row by row.
                    .row_buffer_size(1024)
            });
        let mut conn = Database::connect(options).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(WriteClock::new());
        let counter = statements.clone();
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let counted = metrics.clone();
        conn.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::Relaxed);
            counted.statement(info.elapsed);
            crate::metrics::count_request_statement();
        });
        Ok(Store {
            conn,
            statements,
            writes,
            clock_reads: Arc::new(ClockReads::default()),
            metrics,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Applies every pending migration.
    pub async fn migrate_up(&self) -> Result<(), DbErr> {
        Migrator::up(&self.conn, None).await
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at BEGIN
    /// (IMMEDIATE), so a read-then-write transaction never fails midway with SQLITE_BUSY.
    pub async fn begin_write(&self) -> Result<WriteTx, DbErr> {
        let options = match self.backend() {
            DbBackend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            },
            _ => TransactionOptions::default(),
        };
        let span = tracing::info_span!(
            target: crate::telemetry::TARGET,
            "transaction",
            otel.name = "write transaction",
            outcome = tracing::field::Empty,
        );
        let tx = self.conn.begin_with_options(options).await?;
        if let Some(hook) = dry_run_hook() {
            hook.began(&tx).await?;
        }
        Ok(WriteTx {
            tx,
            store: self.clone(),
            span,
        })
    }

    /// Brings the write clock up to the database's change clock as it is now: call before
    /// trusting anything kept between requests. Returns once a read of the clock that started
    /// after this call has finished (one indexed single-row read, shared with callers that
    /// arrive at the same time).
    pub async fn observe_changes(&self) -> Result<(), DbErr> {
        let reads = &self.clock_reads;
        let mut finished = reads.finished.subscribe();
        let (wanted, lead) = {
            let mut rounds = reads.rounds.lock().unwrap_or_else(|p| p.into_inner());
            if rounds.running {
                rounds.another = true;
                (rounds.started + 1, false)
            } else {
                rounds.running = true;
                rounds.started += 1;
                (rounds.started, true)
            }
        };
        if lead {
            tokio::spawn(self.clone().read_clock_rounds());
        }
        loop {
            {
                let (round, outcome) = &*finished.borrow_and_update();
                if *round >= wanted {
                    return outcome.clone().map_err(DbErr::Custom);
                }
            }
            finished
                .changed()
                .await
                .map_err(|_| DbErr::Custom("the change clock reader stopped".to_owned()))?;
        }
    }

    /// Reads the clock, round after round, for as long as callers keep asking.
    async fn read_clock_rounds(self) {
        let reads = self.clock_reads.clone();
        loop {
            let outcome = self.read_clock().await.map_err(|e| e.to_string());
            let mut rounds = reads.rounds.lock().unwrap_or_else(|p| p.into_inner());
            let round = rounds.started;
            let again = std::mem::take(&mut rounds.another);
            if again {
                rounds.started += 1;
            } else {
                rounds.running = false;
            }
            let _previous = reads.finished.send_replace((round, outcome));
            drop(rounds);
            if !again {
                return;
            }
        }
    }

    /// Makes every later commit that moves the change clock announce itself on the change
    /// channel, for servers that listen (PostgreSQL; it stays on for the database).
    pub async fn announce_changes(&self) -> Result<(), DbErr> {
        self.conn
            .execute_unprepared("UPDATE change_clock SET announce = true WHERE id = 1 AND NOT announce")
            .await?;
        Ok(())
    }

    /// One read of the database's change clock, moving the write clock if it moved.
    async fn read_clock(&self) -> Result<(), DbErr> {
        let read = self.read_clock_row().await;
        self.metrics.clock_read(read.is_ok());
        if let Err(err) = &read {
            crate::metrics::note_database_error(err);
        }
        read
    }

    async fn read_clock_row(&self) -> Result<(), DbErr> {
        let row = self
            .conn
            .query_one_raw(Statement::from_string(
                self.backend(),
                "SELECT seq FROM change_clock WHERE id = 1",
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the change clock's row is missing".to_owned()))?;
        let seq: i64 = row.try_get("", "seq")?;
        self.writes.observe(seq);
        Ok(())
    }

    /// Writes a consistent copy of an SQLite database to `path` (which must not exist) while
    /// other connections keep reading and writing: `VACUUM INTO` reads one snapshot. Returns the
    /// copy's size in bytes.
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<u64, DbErr> {
        if self.backend() != DbBackend::Sqlite {
            return Err(DbErr::Custom(
                "backups are for SQLite files; back up PostgreSQL with pg_dump".to_owned(),
            ));
        }
        if path.exists() {
            return Err(DbErr::Custom(format!(
                "{} already exists; choose a new path",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| DbErr::Custom("the path is not UTF-8".to_owned()))?;
        // A string literal: quotes doubled, no other escaping in SQLite.
        let statement = format!("VACUUM INTO '{}'", target.replace('\'', "''"));
        self.conn
            .execute_raw(Statement::from_string(self.backend(), statement))
            .await?;
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| DbErr::Custom(format!("the copy was not written: {e}")))
    }

    /// Statements executed so far.
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The pool's connections in use and idle, and the most it opens.
    pub fn pool_state(&self) -> (u32, usize, u32) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        self.conn.ping().await.is_ok()
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Rows are locked `FOR UPDATE` on PostgreSQL; SQLite already serialises writers.
pub fn lock_for_update<C: ConnectionTrait>(conn: &C) -> bool {
    conn.get_database_backend() == DbBackend::Postgres
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temporary_store() -> Store {
        let dir = std::env::temp_dir().join("guildhall-tests");
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("clock-{}.db", uuid::Uuid::new_v4().simple()));
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()), 4)
            .await
            .expect("connect");
        store.migrate_up().await.expect("migrate");
        store
    }

    #[tokio::test]
    async fn callers_arriving_together_share_clock_reads_and_each_sees_earlier_commits() {
        let store = temporary_store().await;
        store.observe_changes().await.expect("observe");
        let before = store.statement_count();
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.observe_changes().await })
            })
            .collect();
        for caller in callers {
            caller.await.expect("task").expect("observe");
        }
        let reads = store.statement_count() - before;
        assert!((1..=64).contains(&reads), "{reads} reads for 64 callers");

        // A commit made elsewhere (here: straight on the pool) is seen by the next caller.
        let generation = store.writes.generation();
        store
            .conn
            .execute_unprepared("UPDATE change_clock SET seq = seq + 1 WHERE id = 1")
            .await
            .expect("bump");
        store.observe_changes().await.expect("observe");
        assert_ne!(store.writes.generation(), generation);
        let generation = store.writes.generation();
        store.observe_changes().await.expect("observe");
        assert_eq!(
            store.writes.generation(),
            generation,
            "an unmoved clock keeps the generation"
        );
    }
}
