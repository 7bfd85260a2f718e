//! Single-use links a user receives by mail about their own account: a password reset, or the
//! proof of a new address. Only a SHA-256 of each token is stored; each expires and is marked
//! used once it has served.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("account_tokens")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    // "password_reset" or "email_change".
                    .col(string("purpose"))
                    .col(string_uniq("token_hash"))
                    // For an address change: the new address, as entered and canonical.
                    .col(string_null("email"))
                    .col(string_null("email_canonical"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_tokens_user_id")
                            .from("account_tokens", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_tokens_user")
                    .table("account_tokens")
                    .col("user_id")
                    .col("purpose")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("account_tokens").to_owned())
            .await
    }
}
