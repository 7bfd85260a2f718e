//! A key listed by a custom keychain.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "keychain_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub keychain_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
