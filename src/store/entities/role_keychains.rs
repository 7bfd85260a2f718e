//! A keychain assigned to a role.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "role_keychains")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub keychain_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::keychains::Entity",
        from = "Column::KeychainId",
        to = "super::keychains::Column::Id"
    )]
    Keychain,
}

impl Related<super::keychains::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Keychain.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
