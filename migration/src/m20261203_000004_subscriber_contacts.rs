//! Subscriber contacts: people who receive an organization's mail of chosen notification
//! categories and never sign in (no user, no membership, no keys); the one-click links that
//! unsubscribe them, kept only as hashes; the opt-outs that outlive a contact (nobody but the
//! person can subscribe an address again to what it left); and, on each queued mail, its
//! unsubscribe address, contact and category (so that leaving also stops mail still queued).
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(from: &'static str, col: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from, col)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("subscriber_contacts")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(string("email"))
                    .col(string("email_canonical"))
                    .col(string_null("name"))
                    .col(uuid_null("created_by_user_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("subscriber_contacts", "organization_id", "organizations"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("subscriber_contacts", "created_by_user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // One contact per address in an organization; also the way to a page in order.
        manager
            .create_index(
                Index::create()
                    .name("subscriber_contacts_organization_email")
                    .table("subscriber_contacts")
                    .col("organization_id")
                    .col("email_canonical")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("subscriber_contact_categories")
                    .col(uuid("contact_id"))
                    .col(string("category"))
                    .primary_key(Index::create().col("contact_id").col("category"))
                    .foreign_key(&mut fk(
                        "subscriber_contact_categories",
                        "contact_id",
                        "subscriber_contacts",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("unsubscribe_links")
                    .col(string("token_hash").primary_key())
                    .col(uuid("contact_id"))
                    .col(string("category"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut fk("unsubscribe_links", "contact_id", "subscriber_contacts"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("unsubscribe_links_contact")
                    .table("unsubscribe_links")
                    .col("contact_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("contact_opt_outs")
                    .col(uuid("organization_id"))
                    .col(string("email_canonical"))
                    .col(string("category"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(
                        Index::create()
                            .col("organization_id")
                            .col("email_canonical")
                            .col("category"),
                    )
                    .foreign_key(&mut fk("contact_opt_outs", "organization_id", "organizations"))
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new("unsubscribe_url").string().null().to_owned(),
            ColumnDef::new("contact_id").uuid().null().to_owned(),
            ColumnDef::new("category").string().null().to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table("mail_outbox").add_column(column).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("mail_outbox_contact")
                    .table("mail_outbox")
                    .col("contact_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("mail_outbox")
                    .drop_column("unsubscribe_url")
                    .to_owned(),
            )
            .await?;
        for table in [
            "unsubscribe_links",
            "subscriber_contact_categories",
            "subscriber_contacts",
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
