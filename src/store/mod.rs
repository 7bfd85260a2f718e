//! Persistence: connecting to SQLite or PostgreSQL, migrations, write transactions, entities.
pub mod entities;
pub mod fixtures;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// The shared connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub conn: DatabaseConnection,
    /// SQL statements executed through this pool so far (tests and benchmarks read it).
    pub statements: Arc<AtomicU64>,
}

/// How long an SQLite connection waits for the write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Connects with the settings every deployment needs: several pooled connections, and on
    /// SQLite WAL, a busy timeout and enforced foreign keys.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, DbErr> {
        let mut options = ConnectOptions::new(url.to_owned());
        // SeaORM would otherwise cap an SQLite pool at a single connection.
        options
            .max_connections(max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(15))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        let mut conn = Database::connect(options).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Ok(Store { conn, statements })
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
    pub async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let options = match self.backend() {
            DbBackend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            },
            _ => TransactionOptions::default(),
        };
        self.conn.begin_with_options(options).await
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
