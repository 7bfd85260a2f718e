//! A message to deliver; kept until sent.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub kind: String,
    pub invitation_id: Option<Uuid>,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    /// The one-click unsubscribe address of a mail to a subscriber contact (sent as
    /// `List-Unsubscribe`).
    pub unsubscribe_url: Option<String>,
    /// The subscriber contact and notification category of such a mail.
    pub contact_id: Option<Uuid>,
    pub category: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
