//! Owner safety: an organization's recovery contact (an address its owners chose, proven by a
//! mailed link) and the requests to recover ownership through it, which wait a period during
//! which every owner is told and may cancel.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("owner_recovery_contacts")
                    .col(uuid("organization_id").primary_key())
                    .col(string("email"))
                    .col(string("email_canonical"))
                    // The link that proves the address (while unverified) or starts a request.
                    .col(string_null("token_hash"))
                    .col(string("token_purpose"))
                    .col(timestamp_with_time_zone_null("token_expires_at"))
                    .col(timestamp_with_time_zone_null("verified_at"))
                    .col(timestamp_with_time_zone_null("last_mailed_at"))
                    .col(uuid_null("set_by_user_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("owner_recovery_contacts", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("owner_recovery_contacts", "set_by_user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("owner_recovery_contacts_token")
                    .table("owner_recovery_contacts")
                    .col("token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ownership_recoveries")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(uuid("requester_user_id"))
                    .col(string("email"))
                    .col(string("status"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone("ready_at"))
                    .col(timestamp_with_time_zone_null("decided_at"))
                    .col(uuid_null("decided_by_user_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("ownership_recoveries", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("ownership_recoveries", "requester_user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("ownership_recoveries", "decided_by_user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ownership_recoveries_organization")
                    .table("ownership_recoveries")
                    .col("organization_id")
                    .col("status")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["ownership_recoveries", "owner_recovery_contacts"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
