//! Role bindings that end: `expires_at` (from that instant every decision ignores the binding;
//! a sweeper then removes it and records `role.expire`) and the `reason` it was granted for.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("role_bindings")
                    .add_column(ColumnDef::new("expires_at").timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("role_bindings")
                    .add_column(ColumnDef::new("reason").string().null())
                    .to_owned(),
            )
            .await?;
        // The sweeper's way to the bindings that are due.
        manager
            .create_index(
                Index::create()
                    .name("role_bindings_expires_at")
                    .table("role_bindings")
                    .col("expires_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("role_bindings_expires_at")
                    .table("role_bindings")
                    .to_owned(),
            )
            .await?;
        for column in ["reason", "expires_at"] {
            manager
                .alter_table(Table::alter().table("role_bindings").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
