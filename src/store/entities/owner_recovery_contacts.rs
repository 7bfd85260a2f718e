//! An organization's recovery contact: the address that may ask to recover ownership.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "owner_recovery_contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    pub email: String,
    pub email_canonical: String,
    /// Hash of the one link currently mailed to the address, if any.
    pub token_hash: Option<String>,
    /// What that link does: `VERIFY` the address or `START` a recovery.
    pub token_purpose: String,
    pub token_expires_at: Option<DateTimeUtc>,
    pub verified_at: Option<DateTimeUtc>,
    pub last_mailed_at: Option<DateTimeUtc>,
    pub set_by_user_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
