//! Database migrations of Guildhall, shared by SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial_model;
mod m20261124_000001_change_notifications;
mod m20261125_000001_shared_rows_notifications;
mod m20261125_000002_change_clock;
mod m20261203_000001_change_announcements;
mod m20261203_000002_expiring_grants;
mod m20261203_000003_offer_ends;
mod m20261203_000004_subscriber_contacts;
mod m20261203_000005_owner_recovery;
mod m20261204_000001_teams;
mod m20261204_000002_account_tokens;
mod m20261204_000003_email_verification;
mod m20261204_000004_two_factor;
mod m20261205_000001_require_two_factor;
mod m20261205_000002_external_identities;

pub use m20261125_000002_change_clock::KEPT_TABLES;
pub use m20261203_000001_change_announcements::CHANNEL as CHANGE_CHANNEL;
pub use sea_orm_migration::MigrationStatus;

/// Every migration, in the order it is applied.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial_model::Migration),
            Box::new(m20261124_000001_change_notifications::Migration),
            Box::new(m20261125_000001_shared_rows_notifications::Migration),
            Box::new(m20261125_000002_change_clock::Migration),
            Box::new(m20261203_000001_change_announcements::Migration),
            Box::new(m20261203_000002_expiring_grants::Migration),
            Box::new(m20261203_000003_offer_ends::Migration),
            Box::new(m20261203_000004_subscriber_contacts::Migration),
            Box::new(m20261203_000005_owner_recovery::Migration),
            Box::new(m20261204_000001_teams::Migration),
            Box::new(m20261204_000002_account_tokens::Migration),
            Box::new(m20261204_000003_email_verification::Migration),
            Box::new(m20261204_000004_two_factor::Migration),
            Box::new(m20261205_000001_require_two_factor::Migration),
            Box::new(m20261205_000002_external_identities::Migration),
        ]
    }
}
