//! An organization may require two-factor sign-in of its members:
//! `organizations.require_two_factor`, off for every organization that exists.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("organizations")
                    .add_column(ColumnDef::new("require_two_factor").boolean().not_null().default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("organizations")
                    .drop_column("require_two_factor")
                    .to_owned(),
            )
            .await
    }
}
