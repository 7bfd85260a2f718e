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

/// Narrows the audit log; all given conditions apply.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actions: Option<Vec<String>>,
    pub actor_user_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

fn filtered(organization_id: Uuid, filter: &AuditFilter) -> sea_orm::Select<audit_events::Entity> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let mut query = audit_events::Entity::find().filter(audit_events::Column::OrganizationId.eq(organization_id));
    if let Some(actions) = &filter.actions {
        query = query.filter(audit_events::Column::Action.is_in(actions.clone()));
    }
    if let Some(actor) = filter.actor_user_id {
        query = query.filter(audit_events::Column::ActorUserId.eq(actor));
    }
    if let Some(target) = filter.target_id {
        query = query.filter(audit_events::Column::TargetId.eq(target));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::Column::OccurredAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::Column::OccurredAt.lt(until));
    }
    query
}

/// A page of an organization's audit log, newest first.
pub async fn page(
    app: &super::App,
    organization_id: Uuid,
    filter: &AuditFilter,
    page: super::page::PageRequest,
) -> DomainResult<super::page::Page<audit_events::Model>> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = filtered(organization_id, filter)
        .order_by_desc(audit_events::Column::Id)
        .limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(audit_events::Column::Id.lt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(super::page::Page::from_rows(
        rows.into_iter().map(|e| (e.id, e)).collect(),
        page.first,
    ))
}

/// Events of an organization that occurred at or after `since`, oldest first, at most `limit`
/// (live subscriptions read the recent past again on each change and skip what they sent: an
/// event's id is taken before its transaction commits, so ids alone could skip a late commit).
pub async fn occurred_since(
    app: &super::App,
    organization_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
    limit: u64,
) -> DomainResult<Vec<audit_events::Model>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    Ok(audit_events::Entity::find()
        .filter(audit_events::Column::OrganizationId.eq(organization_id))
        .filter(audit_events::Column::OccurredAt.gte(since))
        .order_by_asc(audit_events::Column::OccurredAt)
        .order_by_asc(audit_events::Column::Id)
        .limit(limit)
        .all(&app.store.conn)
        .await?)
}

/// One page of every organization's events from `since` on, oldest first, after the event
/// `after` (its time and id) when given: the pages of an export, read by keyset.
pub async fn export_page<C: ConnectionTrait>(
    conn: &C,
    since: chrono::DateTime<chrono::Utc>,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: u64,
) -> DomainResult<Vec<audit_events::Model>> {
    use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut query = audit_events::Entity::find().filter(audit_events::Column::OccurredAt.gte(since));
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any().add(audit_events::Column::OccurredAt.gt(at)).add(
                Condition::all()
                    .add(audit_events::Column::OccurredAt.eq(at))
                    .add(audit_events::Column::Id.gt(id)),
            ),
        );
    }
    Ok(query
        .order_by_asc(audit_events::Column::OccurredAt)
        .order_by_asc(audit_events::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// An event as a line of an export.
pub fn export_line(event: &audit_events::Model) -> Value {
    serde_json::json!({
        "id": event.id,
        "organizationId": event.organization_id,
        "actorUserId": event.actor_user_id,
        "actorTokenId": event.actor_token_id,
        "action": event.action,
        "targetType": event.target_type,
        "targetId": event.target_id,
        "details": serde_json::from_str::<Value>(&event.details).unwrap_or(Value::Null),
        "clientAddress": event.client_address,
        "userAgent": event.user_agent,
        "requestId": event.request_id,
        "occurredAt": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

pub async fn count(app: &super::App, organization_id: Uuid, filter: &AuditFilter) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(filtered(organization_id, filter).count(&app.store.conn).await?)
}

/// An audit event by id, whichever organization it belongs to.
pub async fn find(app: &super::App, id: Uuid) -> DomainResult<Option<audit_events::Model>> {
    use sea_orm::EntityTrait;
    Ok(audit_events::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// Refused mutations recorded per actor and organization per minute.
pub const DENIALS_RECORDED_PER_MINUTE: u64 = 10;

/// Records a refused mutation in its own transaction (the refused one was rolled back).
pub async fn record_denial(
    app: &super::App,
    meta: &RequestMeta,
    actor: Actor,
    organization_id: Uuid,
    mutation: &str,
    key: Option<&str>,
) -> DomainResult<()> {
    // Refusals are evidence, but one member must not be able to flood the log with them: each
    // actor's refusals in an organization are recorded up to a handful a minute; the rest are
    // counted (in the recorded events' window) but not written.
    let limit = super::rate_limit::Limit {
        scope: "audit_denials",
        max: DENIALS_RECORDED_PER_MINUTE,
        window: chrono::Duration::minutes(1),
    };
    let subject = format!(
        "{}:{}",
        actor.user_id.map(|u| u.to_string()).unwrap_or_default(),
        organization_id
    );
    let seen = super::rate_limit::count_attempt(&app.store.conn, &limit, &subject, app.now()).await?;
    if seen > DENIALS_RECORDED_PER_MINUTE {
        return Ok(());
    }
    record(
        &app.store.conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization_id),
            actor,
            action: "authorization.denied",
            target: None,
            details: serde_json::json!({
                "mutation": mutation, "key": key,
                "note": format!("at most {DENIALS_RECORDED_PER_MINUTE} refusals per actor and organization are recorded a minute"),
            }),
        },
    )
    .await
}
