//! Two-factor sign-in: a person's TOTP secret (RFC 6238) and when it was confirmed, the last time
//! step a code was accepted at (a code works once), their single-use recovery codes (hashed),
//! and the short-lived challenges `logIn` answers with while a second factor is due.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new("totp_secret").string().null().to_owned(),
            ColumnDef::new("totp_enabled_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new("totp_last_step").big_integer().null().to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table("users").add_column(column).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("recovery_codes")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_uniq("code_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_recovery_codes_user_id")
                            .from("recovery_codes", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("login_challenges")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_uniq("token_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .col(integer("attempts").default(0))
                    .col(string_null("client_address"))
                    .col(string_null("user_agent"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_login_challenges_user_id")
                            .from("login_challenges", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table) in [
            ("idx_recovery_codes_user", "recovery_codes"),
            ("idx_login_challenges_user", "login_challenges"),
        ] {
            manager
                .create_index(Index::create().name(name).table(table).col("user_id").to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["login_challenges", "recovery_codes"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for column in ["totp_last_step", "totp_enabled_at", "totp_secret"] {
            manager
                .alter_table(Table::alter().table("users").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
