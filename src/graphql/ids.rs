//! Relay global IDs: opaque to clients, `base64url("Type:uuid")` inside.
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::domain::DomainError;

/// Object types that have global IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    User,
    Organization,
    Membership,
    Role,
    Keychain,
    Workspace,
    Invitation,
    ApiToken,
    AuditEvent,
    SubscriberContact,
    Team,
    Session,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::User => "User",
            NodeKind::Organization => "Organization",
            NodeKind::Membership => "Membership",
            NodeKind::Role => "Role",
            NodeKind::Keychain => "Keychain",
            NodeKind::Workspace => "Workspace",
            NodeKind::Invitation => "Invitation",
            NodeKind::ApiToken => "ApiToken",
            NodeKind::AuditEvent => "AuditEvent",
            NodeKind::SubscriberContact => "SubscriberContact",
            NodeKind::Team => "Team",
            NodeKind::Session => "Session",
        }
    }

    pub fn parse(name: &str) -> Option<NodeKind> {
        [
            NodeKind::User,
            NodeKind::Organization,
            NodeKind::Membership,
            NodeKind::Role,
            NodeKind::Keychain,
            NodeKind::Workspace,
            NodeKind::Invitation,
            NodeKind::ApiToken,
            NodeKind::AuditEvent,
            NodeKind::SubscriberContact,
            NodeKind::Team,
            NodeKind::Session,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

pub fn encode(kind: NodeKind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name())))
}

/// Any global ID, or `None` when it is not one of ours.
pub fn decode_any(id: &ID) -> Option<(NodeKind, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(id.as_str()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, uuid) = text.split_once(':')?;
    Some((NodeKind::parse(kind)?, uuid.parse().ok()?))
}

/// A global ID that must be of one type: malformed → BAD_USER_INPUT naming the field; another
/// type → NOT_FOUND, as if no such object existed.
pub fn decode(field: &str, kind: NodeKind, id: &ID) -> Result<Uuid, DomainError> {
    match decode_any(id) {
        None => Err(DomainError::bad_input(field, "not a valid ID")),
        Some((k, uuid)) if k == kind => Ok(uuid),
        Some(_) => Err(DomainError::NotFound(match kind {
            NodeKind::User => "user",
            NodeKind::Organization => "organization",
            NodeKind::Membership => "membership",
            NodeKind::Role => "role",
            NodeKind::Keychain => "keychain",
            NodeKind::Workspace => "workspace",
            NodeKind::Invitation => "invitation",
            NodeKind::ApiToken => "API token",
            NodeKind::AuditEvent => "audit event",
            NodeKind::SubscriberContact => "subscriber contact",
            NodeKind::Team => "team",
            NodeKind::Session => "session",
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_type() {
        let uuid = Uuid::now_v7();
        let id = encode(NodeKind::Organization, uuid);
        assert_eq!(
            decode("organizationId", NodeKind::Organization, &id).expect("same type"),
            uuid
        );
        assert_eq!(
            decode("roleId", NodeKind::Role, &id).expect_err("refused").code(),
            "NOT_FOUND"
        );
        assert_eq!(
            decode("roleId", NodeKind::Role, &ID("garbage".into()))
                .expect_err("refused")
                .code(),
            "BAD_USER_INPUT"
        );
    }
}
