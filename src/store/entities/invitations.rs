//! An invitation to join an organization.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub email: String,
    pub email_canonical: String,
    pub token_hash: String,
    pub status: String,
    pub expires_at: DateTimeUtc,
    pub invited_by_user_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    pub membership_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
