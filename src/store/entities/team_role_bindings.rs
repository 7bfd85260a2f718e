//! A role held by a team, organization-wide or in one workspace: every member of the team
//! holds it through the team.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_role_bindings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub team_id: Uuid,
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
    /// The team's members, for reading each member's team bindings in one statement.
    #[sea_orm(
        belongs_to = "super::team_members::Entity",
        from = "Column::TeamId",
        to = "super::team_members::Column::TeamId"
    )]
    Members,
}

impl ActiveModelBehavior for ActiveModel {}
