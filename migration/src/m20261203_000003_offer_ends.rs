//! Invitation offers that end: the role binding an accepted invitation creates from an offer
//! carries the offer's `expires_at`, and an offer whose end has passed is not granted at all.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("invitation_role_bindings")
                    .add_column(ColumnDef::new("expires_at").timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("invitation_role_bindings")
                    .drop_column("expires_at")
                    .to_owned(),
            )
            .await
    }
}
