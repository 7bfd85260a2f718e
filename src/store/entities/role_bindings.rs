//! A role held by a member, organization-wide or in one workspace.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "role_bindings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub membership_id: Uuid,
    pub role_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub scope_key: String,
    pub granted_by_user_id: Option<Uuid>,
    pub granted_at: DateTimeUtc,
    /// From this instant the binding grants nothing; `None` for a binding that lasts.
    pub expires_at: Option<DateTimeUtc>,
    /// Why it was granted, as the granter put it.
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::roles::Entity",
        from = "Column::RoleId",
        to = "super::roles::Column::Id"
    )]
    Role,
}

impl Related<super::roles::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Role.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
