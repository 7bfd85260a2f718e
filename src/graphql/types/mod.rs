//! GraphQL object types. Each wraps a row and resolves related objects through loaders.
//!
//! Resolvers that do more than read a field or call a loader run their work in a
//! `Box::pin(async move { .. })`. async-graphql keeps one future per selected field of every
//! object of a response while it waits, each as large as the largest resolver of its type; so
//! one heavy resolver would make every field of a thousand listed members heavy.
pub mod api_token;
pub mod audit;
pub mod contact;
pub mod invitation;
pub mod key;
pub mod keychain;
pub mod membership;
pub mod organization;
pub mod owner_safety;
pub mod role;
pub mod team;
pub mod user;
pub mod workspace;

use async_graphql::{ID, Interface};

pub use api_token::ApiToken;
pub use audit::{AuditEvent, AuditEventConnection, AuditEventEdge, AuditFilter};
pub use contact::{NotificationCategory, SubscriberContact, SubscriberContactConnection, SubscriberContactEdge};
pub use invitation::{Invitation, InvitationConnection, InvitationEdge, InvitationRoleBinding, InvitationStatus};
pub use key::{Authorization, Grant, HeldKey, Key, KeyHolder, KeyHolderConnection, KeyHolderEdge, TeamKeyHolder};
pub use keychain::Keychain;
pub use membership::{Membership, MembershipConnection, MembershipEdge, RoleBinding};
pub use organization::{
    DocumentFormat, LimitUsage, MemberFilter, Organization, OrganizationConnection, OrganizationEdge,
    OrganizationLimits, Plan,
};
pub use owner_safety::{OwnerRecoveryContact, OwnerSafety, OwnershipRecovery, OwnershipRecoveryStatus};
pub use role::{DefinitionKind, Role, RoleScope};
pub use team::{Team, TeamConnection, TeamEdge};
pub use user::{User, UserKind, visible_user};
pub use workspace::{Workspace, WorkspaceConnection, WorkspaceEdge};

/// Anything with a global ID.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "The object's global ID: opaque, and accepted by `node(id:)`."
))]
pub enum Node {
    User(User),
    Organization(Organization),
    Membership(Membership),
    Role(Role),
    Keychain(Keychain),
    Workspace(Workspace),
    Invitation(Invitation),
    ApiToken(ApiToken),
    AuditEvent(AuditEvent),
    SubscriberContact(SubscriberContact),
    Team(Team),
}
