//! A change clock in the database and atomic rate counters.
//!
//! `change_clock` holds one number that moves in the same transaction as every change to a
//! table whose rows a server process keeps between requests. Each request reads it once before
//! trusting anything kept; as the number is written by the committing transaction itself, a
//! request that starts after a commit always sees it moved, whichever process (or person) made
//! the change, on SQLite and PostgreSQL alike. This replaces the announcements on a listening
//! connection, which could be lost silently and were never proof of freshness.
//!
//! `rate_counters` counts attempts per subject in a fixed window with one atomic upsert, so
//! concurrent attempts cannot all pass a check made before any of them was counted.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261124_000001_change_notifications::{announce_changes, stop_announcing_changes};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Tables whose rows server processes keep between requests.
pub const KEPT_TABLES: [&str; 12] = [
    "users",
    "sessions",
    "memberships",
    "roles",
    "role_keys",
    "role_keychains",
    "role_bindings",
    "keychains",
    "keychain_keys",
    "organizations",
    "workspaces",
    "api_tokens",
];

/// Columns of `api_tokens` whose change matters to a kept token (`last_used_at` does not, and
/// it is written as tokens are used).
const TOKEN_COLUMNS: &str = "user_id, organization_id, keychain_id, name, token_hash, expires_at, revoked_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .create_table(
                Table::create()
                    .table("change_clock")
                    .col(ColumnDef::new("id").integer().not_null().primary_key())
                    .col(ColumnDef::new("seq").big_integer().not_null())
                    .col(ColumnDef::new("xid").big_integer())
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared("INSERT INTO change_clock (id, seq) VALUES (1, 1)")
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rate_counters")
                    .col(ColumnDef::new("scope").string().not_null())
                    .col(ColumnDef::new("subject").string().not_null())
                    .col(ColumnDef::new("window_start").big_integer().not_null())
                    .col(ColumnDef::new("count").big_integer().not_null())
                    .primary_key(Index::create().col("scope").col("subject"))
                    .to_owned(),
            )
            .await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                let all: Vec<&str> = KEPT_TABLES.to_vec();
                stop_announcing_changes(db, &all).await?;
                db.execute_unprepared("DROP FUNCTION IF EXISTS guildhall_announce_change()")
                    .await?;
                // Deferred to commit, so the clock's row is locked only for the instant before
                // the commit and never while the transaction waits for another lock (no
                // deadlock can involve it). The xid test keeps it to one new row version per
                // transaction however many rows it changes.
                db.execute_unprepared(
                    "CREATE OR REPLACE FUNCTION guildhall_tick_change_clock() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN UPDATE change_clock SET seq = seq + 1, xid = txid_current() \
                     WHERE id = 1 AND xid IS DISTINCT FROM txid_current(); RETURN NULL; END $$",
                )
                .await?;
                for table in KEPT_TABLES {
                    let events = if table == "api_tokens" {
                        format!("INSERT OR DELETE OR UPDATE OF {TOKEN_COLUMNS}")
                    } else {
                        "INSERT OR UPDATE OR DELETE".to_owned()
                    };
                    db.execute_unprepared(&format!(
                        "CREATE CONSTRAINT TRIGGER {table}_tick_change_clock AFTER {events} ON {table} \
                         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION guildhall_tick_change_clock()"
                    ))
                    .await?;
                    // TRUNCATE has no row triggers; a statement trigger covers it.
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_truncate_change_clock AFTER TRUNCATE ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION guildhall_tick_change_clock()"
                    ))
                    .await?;
                }
            }
            _ => {
                for table in KEPT_TABLES {
                    let update = if table == "api_tokens" {
                        format!("UPDATE OF {TOKEN_COLUMNS}")
                    } else {
                        "UPDATE".to_owned()
                    };
                    for (suffix, event) in [
                        ("insert", "INSERT".to_owned()),
                        ("update", update),
                        ("delete", "DELETE".to_owned()),
                    ] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {table}_{suffix}_tick_change_clock AFTER {event} ON {table} \
                             BEGIN UPDATE change_clock SET seq = seq + 1 WHERE id = 1; END"
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for table in KEPT_TABLES {
                    db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_tick_change_clock ON {table}"))
                        .await?;
                    db.execute_unprepared(&format!(
                        "DROP TRIGGER IF EXISTS {table}_truncate_change_clock ON {table}"
                    ))
                    .await?;
                }
                db.execute_unprepared("DROP FUNCTION IF EXISTS guildhall_tick_change_clock()")
                    .await?;
                db.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION guildhall_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN PERFORM pg_notify('{}', TG_TABLE_NAME); RETURN NULL; END $$",
                    crate::m20261124_000001_change_notifications::CHANNEL
                ))
                .await?;
                let all: Vec<&str> = KEPT_TABLES.to_vec();
                announce_changes(db, &all).await?;
            }
            _ => {
                for table in KEPT_TABLES {
                    for suffix in ["insert", "update", "delete"] {
                        db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_{suffix}_tick_change_clock"))
                            .await?;
                    }
                }
            }
        }
        manager
            .drop_table(Table::drop().table("rate_counters").to_owned())
            .await?;
        manager.drop_table(Table::drop().table("change_clock").to_owned()).await
    }
}
