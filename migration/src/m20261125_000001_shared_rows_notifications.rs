//! Organizations and workspaces are now also kept between requests (loaded rows shared while
//! the database is unchanged), so on PostgreSQL their changes are announced on the same channel
//! as the other kept tables.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261124_000001_change_notifications::{announce_changes, stop_announcing_changes};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["organizations", "workspaces"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        announce_changes(manager.get_connection(), &TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        stop_announcing_changes(manager.get_connection(), &TABLES).await
    }
}
