//! The audit log: its events and how to narrow it.
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use crate::domain::{DomainError, audit};
use crate::graphql::connection::connection;
use crate::graphql::error::ApiResult;
use crate::graphql::ids::{self, NodeKind};

use super::{User, visible_user};

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "A page of audit events."
);

/// Most actions one audit filter may name.
const MAX_AUDIT_FILTER_ACTIONS: usize = 50;

/// Narrows the audit log; all given conditions apply.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// Any of these actions, e.g. `role.grant` (at most 50).
    pub actions: Option<Vec<String>>,
    /// Events caused by this user.
    pub actor_id: Option<ID>,
    /// Events about this object (any global ID).
    pub target_id: Option<ID>,
    /// From this time on (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Before this time.
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    pub(super) fn into_domain(self) -> Result<audit::AuditFilter, DomainError> {
        if let Some(actions) = &self.actions {
            if actions.len() > MAX_AUDIT_FILTER_ACTIONS {
                return Err(DomainError::bad_input(
                    "filter.actions",
                    format!("at most {MAX_AUDIT_FILTER_ACTIONS} actions can be asked for at once"),
                ));
            }
            if actions.iter().any(|a| a.len() > 64) {
                return Err(DomainError::bad_input(
                    "filter.actions",
                    "an action name has at most 64 characters",
                ));
            }
        }
        Ok(audit::AuditFilter {
            actions: self.actions,
            actor_user_id: self
                .actor_id
                .map(|id| ids::decode("filter.actorId", NodeKind::User, &id))
                .transpose()?,
            target_id: self
                .target_id
                .map(|id| {
                    ids::decode_any(&id)
                        .map(|(_, uuid)| uuid)
                        .ok_or_else(|| DomainError::bad_input("filter.targetId", "not a valid ID"))
                })
                .transpose()?,
            since: self.since,
            until: self.until,
        })
    }
}

/// One append-only record of a change, or of a refused one.
pub struct AuditEvent(pub crate::store::entities::audit_events::Model);

/// One append-only record of a change in an organization, or of a refused attempt.
#[Object]
impl AuditEvent {
    /// The event's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::AuditEvent, self.0.id)
    }

    /// What happened, e.g. `role.grant`, `invitation.accept`, `authorization.denied`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// Who did it; `null` for anonymous attempts, deleted accounts and people who no longer
    /// share an organization with the viewer (`actorId` still names them).
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.actor_user_id else {
            return Ok(None);
        };
        visible_user(ctx, id).await
    }

    /// The global ID of the user who acted, even when `actor` is `null` (someone the viewer no
    /// longer shares an organization with).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_user_id.map(|id| ids::encode(NodeKind::User, id))
    }

    /// The API token used, if any.
    async fn actor_token_id(&self) -> Option<ID> {
        self.0.actor_token_id.map(|id| ids::encode(NodeKind::ApiToken, id))
    }

    /// The type of the object acted on, e.g. `Membership`.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }

    /// The global ID of the object acted on (it may no longer exist).
    async fn target_id(&self) -> Option<ID> {
        let kind = self.0.target_type.as_deref().and_then(NodeKind::parse)?;
        self.0.target_id.map(|id| ids::encode(kind, id))
    }

    /// When it happened.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// What changed; never a password, token or secret.
    async fn details(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::from_str(&self.0.details).unwrap_or(serde_json::Value::Null))
    }

    /// The client address the request came from.
    async fn client_address(&self) -> Option<&str> {
        self.0.client_address.as_deref()
    }

    /// The `User-Agent` header of the request, when it sent one.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// The id of the request that caused it, as errors of that request report it in
    /// `extensions.requestId`.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
}
