//! A request to recover an organization's ownership through its recovery contact.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ownership_recoveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub requester_user_id: Uuid,
    /// The recovery contact's address the request was proven with.
    pub email: String,
    /// PENDING, CANCELLED or COMPLETED.
    pub status: String,
    pub requested_at: DateTimeUtc,
    /// When the requester may complete it, unless an owner cancels first.
    pub ready_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
    pub decided_by_user_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
