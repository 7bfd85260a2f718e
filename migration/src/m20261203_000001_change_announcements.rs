//! On PostgreSQL, a transaction that moves the change clock can also announce it on the
//! `guildhall_changes` channel (delivered at its commit, once however many rows it changed), so
//! that servers listening there (`--listen-database-url`) hear of it at once instead of at the
//! next poll. Freshness still rests on the clock alone: an announcement only says "read the
//! clock now".
//!
//! Announcing is off until a server that listens starts (it sets `change_clock.announce`): a
//! transaction that notifies takes PostgreSQL's one lock for notifications at commit, which
//! queues committing writers behind each other, a price only deployments that listen pay.
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
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE change_clock ADD COLUMN announce boolean NOT NULL DEFAULT false")
            .await?;
        db.execute_unprepared(&format!(
            "CREATE OR REPLACE FUNCTION guildhall_tick_change_clock() RETURNS trigger LANGUAGE plpgsql AS $$ \
             DECLARE should_announce boolean; \
             BEGIN UPDATE change_clock SET seq = seq + 1, xid = txid_current() \
             WHERE id = 1 AND xid IS DISTINCT FROM txid_current() RETURNING announce INTO should_announce; \
             IF should_announce THEN PERFORM pg_notify('{CHANNEL}', ''); END IF; \
             RETURN NULL; END $$"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION guildhall_tick_change_clock() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN UPDATE change_clock SET seq = seq + 1, xid = txid_current() \
             WHERE id = 1 AND xid IS DISTINCT FROM txid_current(); RETURN NULL; END $$",
        )
        .await?;
        db.execute_unprepared("ALTER TABLE change_clock DROP COLUMN announce")
            .await?;
        Ok(())
    }
}
