//! Organizations and workspaces are now also kept between requests (loaded rows shared while
//! the database is unchanged), so on PostgreSQL their changes are announced on the same channel
//! as the other kept tables.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["organizations", "workspaces"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TABLES {
            // The function comes from the change-notifications migration.
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_announce_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION guildhall_announce_change()"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TABLES {
            db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {table}_announce_change ON {table}"))
                .await?;
        }
        Ok(())
    }
}
