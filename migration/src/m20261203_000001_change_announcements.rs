//! On PostgreSQL, a transaction that moves the change clock also announces it on the
//! `guildhall_changes` channel (delivered at its commit, once however many rows it changed).
//! A server given `--listen-database-url` listens there, so live subscriptions in every process
//! hear of a commit at once instead of at the next poll of the clock. Freshness still rests on
//! the clock alone: an announcement only says "read the clock now".
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The channel commits are announced on.
pub const CHANNEL: &str = "guildhall_changes";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE OR REPLACE FUNCTION guildhall_tick_change_clock() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN UPDATE change_clock SET seq = seq + 1, xid = txid_current() \
                 WHERE id = 1 AND xid IS DISTINCT FROM txid_current(); \
                 IF FOUND THEN PERFORM pg_notify('{CHANNEL}', ''); END IF; \
                 RETURN NULL; END $$"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE OR REPLACE FUNCTION guildhall_tick_change_clock() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN UPDATE change_clock SET seq = seq + 1, xid = txid_current() \
                 WHERE id = 1 AND xid IS DISTINCT FROM txid_current(); RETURN NULL; END $$",
            )
            .await?;
        Ok(())
    }
}
