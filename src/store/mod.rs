//! Persistence: connecting to SQLite or PostgreSQL, migrations, write transactions, entities.
pub mod entities;
pub mod fixtures;

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Ticks after every committed write, so that caches of database rows know when to drop them.
    pub writes: Arc<WriteClock>,
}

/// A generation number of the database's contents as this process knows them. It moves after
/// every write this process commits (a statement outside a transaction, or a transaction's
/// commit) and, on PostgreSQL, whenever another process reports a commit. A value read from the
/// database may be reused for as long as the generation read *before* reading it is current.
#[derive(Debug)]
pub struct WriteClock {
    generation: AtomicU64,
    /// False while writes of other processes could go unnoticed (PostgreSQL without its
    /// notification listener): caches must then read through.
    trusted: AtomicBool,
}

impl WriteClock {
    pub fn new(trusted: bool) -> WriteClock {
        WriteClock {
            generation: AtomicU64::new(1),
            trusted: AtomicBool::new(trusted),
        }
    }

    /// The current generation, or `None` when nothing read now may be reused.
    pub fn generation(&self) -> Option<u64> {
        if self.trusted.load(Ordering::Acquire) {
            Some(self.generation.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Records that the database changed: every value read before is stale.
    pub fn tick(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether writes of other processes are being heard (set by the PostgreSQL listener).
    pub fn set_trusted(&self, trusted: bool) {
        self.tick();
        self.trusted.store(trusted, Ordering::Release);
        self.tick();
    }
}

/// Whether a statement can change rows (and so must move the write clock).
fn writes_rows(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE", "REPLAC"]
        .iter()
        .any(|verb| head.eq_ignore_ascii_case(verb))
}

/// A write transaction: a database transaction whose commit moves the write clock. It can be
/// used wherever a connection can.
pub struct WriteTx {
    tx: DatabaseTransaction,
    writes: Arc<WriteClock>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        let result = self.tx.commit().await;
        // Even a failed commit may have reached the database; stale is never safe to assume.
        self.writes.tick();
        result
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
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
        // SQLite is served by this one process; PostgreSQL caches wait for the listener.
        let writes = Arc::new(WriteClock::new(conn.get_database_backend() == DbBackend::Sqlite));
        let (counter, clock) = (statements.clone(), writes.clone());
        conn.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::Relaxed);
            // Outside a transaction the write is committed by now; inside one this tick is
            // early, and the commit ticks again.
            if writes_rows(&info.statement.sql) {
                clock.tick();
            }
        });
        Ok(Store {
            conn,
            statements,
            writes,
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
        Ok(WriteTx {
            tx: self.conn.begin_with_options(options).await?,
            writes: self.writes.clone(),
        })
    }

    /// On PostgreSQL, listens for changes committed by any process (announced by triggers, see
    /// the migrations) and moves the write clock on each; caches are trusted only while the
    /// listener is connected. Does nothing on SQLite, where this process is the only writer.
    pub fn listen_for_changes(&self) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        let pool = self.conn.get_postgres_connection_pool().clone();
        let writes = self.writes.clone();
        tokio::spawn(async move {
            loop {
                match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => match listener.listen(migration::CHANGES_CHANNEL).await {
                        Ok(()) => {
                            writes.set_trusted(true);
                            // `None` or an error: the connection dropped and announcements
                            // may have been missed.
                            while let Ok(Some(_)) = listener.try_recv().await {
                                writes.tick();
                            }
                            writes.set_trusted(false);
                            tracing::warn!("lost the change listener; reading through until it is back");
                        }
                        Err(err) => tracing::warn!(error = %err, "cannot listen for changes"),
                    },
                    Err(err) => tracing::warn!(error = %err, "cannot connect the change listener"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Statements executed so far.
    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
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
