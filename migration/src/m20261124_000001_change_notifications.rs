//! On PostgreSQL, every committed change to the rows that decide who a caller is and what they
//! hold is announced on the `guildhall_changes` channel, so that each server process can drop
//! what it remembers of them, whichever process (or person) made the change. SQLite needs
//! nothing: one server process owns the file.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The channel the server listens on.
pub const CHANNEL: &str = "guildhall_changes";

/// Tables whose rows the server keeps between requests.
const TABLES: [&str; 10] = [
    "users",
    "sessions",
    "api_tokens",
    "memberships",
    "roles",
    "role_keys",
    "role_keychains",
    "role_bindings",
    "keychains",
    "keychain_keys",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION guildhall_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
        ))
        .await?;
        announce_changes(db, &TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        stop_announcing_changes(db, &TABLES).await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS guildhall_announce_change()")
            .await?;
        Ok(())
    }
}

/// Adds the statement-level trigger announcing changes of each table (PostgreSQL; the function
/// `guildhall_announce_change` must exist).
pub(crate) async fn announce_changes<C: ConnectionTrait>(db: &C, tables: &[&str]) -> Result<(), DbErr> {
    for table in tables {
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {table}_announce_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
             FOR EACH STATEMENT EXECUTE FUNCTION guildhall_announce_change()"
        ))
        .await?;
    }
    Ok(())
}

/// Drops what [`announce_changes`] added.
pub(crate) async fn stop_announcing_changes<C: ConnectionTrait>(db: &C, tables: &[&str]) -> Result<(), DbErr> {
    for table in tables {
        db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_announce_change ON {table}"))
            .await?;
    }
    Ok(())
}
