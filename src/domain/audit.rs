//! The audit log: events are written inside the transaction of the change they describe.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait};
use serde_json::Value;
use uuid::Uuid;

use crate::store::entities::audit_events;

use super::{DomainResult, RequestMeta, new_id};

/// Who did it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
}

/// One event to append.
pub struct Event<'a> {
    pub organization_id: Option<Uuid>,
    pub actor: Actor,
    pub action: &'a str,
    pub target: Option<(&'a str, Uuid)>,
    /// Never a password, token or secret.
    pub details: Value,
}

pub async fn record<C: ConnectionTrait>(
    conn: &C,
    meta: &RequestMeta,
    now: chrono::DateTime<chrono::Utc>,
    event: Event<'_>,
) -> DomainResult<()> {
    audit_events::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(event.organization_id),
        actor_user_id: Set(event.actor.user_id),
        actor_token_id: Set(event.actor.token_id),
        action: Set(event.action.to_owned()),
        target_type: Set(event.target.map(|(t, _)| t.to_owned())),
        target_id: Set(event.target.map(|(_, id)| id)),
        details: Set(event.details.to_string()),
        client_address: Set(meta.client_address.clone()),
        user_agent: Set(meta.user_agent.clone()),
        request_id: Set(Some(meta.request_id.clone())),
        occurred_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}
