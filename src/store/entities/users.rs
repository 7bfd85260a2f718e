//! A global account, HUMAN or SERVICE.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub email: Option<String>,
    pub email_canonical: Option<String>,
    pub name: String,
    pub password_hash: Option<String>,
    pub token_version: i64,
    pub service_organization_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the person proved they receive mail at `email`; `None` until then (and for service
    /// accounts, which have no address).
    pub email_verified_at: Option<DateTimeUtc>,
    /// Base32 TOTP secret (RFC 6238); set at enrolment, in force once `totp_enabled_at` is.
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<DateTimeUtc>,
    /// The last time step a code was accepted at: no code works twice.
    pub totp_last_step: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
