//! How safe an organization's ownership is, and its way back when no owner is left.
use async_graphql::{Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::owner_safety::Safety;
use crate::store::entities::{owner_recovery_contacts, ownership_recoveries, users};

/// Where a recovery of ownership stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum OwnershipRecoveryStatus {
    /// Waiting: every owner was mailed and may cancel until `readyAt`.
    Pending,
    /// An owner cancelled it (or removed the recovery contact).
    Cancelled,
    /// The requester became an owner.
    Completed,
}

impl OwnershipRecoveryStatus {
    fn parse(value: &str) -> OwnershipRecoveryStatus {
        match value {
            "CANCELLED" => OwnershipRecoveryStatus::Cancelled,
            "COMPLETED" => OwnershipRecoveryStatus::Completed,
            _ => OwnershipRecoveryStatus::Pending,
        }
    }
}

/// The address through which ownership can be recovered.
#[derive(SimpleObject)]
pub struct OwnerRecoveryContact {
    /// The address, as entered.
    pub email: String,
    /// When the address was proven by the link mailed to it; `null` until then, and an
    /// unconfirmed contact cannot start a recovery.
    pub verified_at: Option<DateTime<Utc>>,
    /// When it was named.
    pub created_at: DateTime<Utc>,
}

impl From<owner_recovery_contacts::Model> for OwnerRecoveryContact {
    fn from(row: owner_recovery_contacts::Model) -> Self {
        OwnerRecoveryContact {
            email: row.email,
            verified_at: row.verified_at,
            created_at: row.created_at,
        }
    }
}

/// A request to recover ownership through the recovery contact.
pub struct OwnershipRecovery(pub ownership_recoveries::Model, pub Option<users::Model>);

/// A request to recover ownership through the recovery contact.
#[Object]
impl OwnershipRecovery {
    /// Where it stands.
    async fn status(&self) -> OwnershipRecoveryStatus {
        OwnershipRecoveryStatus::parse(&self.0.status)
    }

    /// The recovery contact's address it was proven with.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The name of the account that started it and will become owner.
    async fn requester_name(&self) -> Option<&str> {
        self.1.as_ref().map(|u| u.name.as_str())
    }

    /// The address of the account that started it.
    async fn requester_email(&self) -> Option<&str> {
        self.1.as_ref().and_then(|u| u.email.as_deref())
    }

    /// When it was started.
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }

    /// From when the requester may complete it, unless an owner cancels first.
    async fn ready_at(&self) -> DateTime<Utc> {
        self.0.ready_at
    }

    /// When it was cancelled or completed.
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
}

/// How safe the organization's ownership is: shown to owners.
pub struct OwnerSafety(pub Safety);

/// How safe the organization's ownership is: shown to owners.
#[Object]
impl OwnerSafety {
    /// How many members hold `owner`.
    async fn owners(&self) -> u64 {
        self.0.owners
    }

    /// How many owners the organization must keep on its plan (`minOwners`): the last of them
    /// cannot leave, be removed or lose the role (`LAST_OWNER`).
    async fn minimum(&self) -> u64 {
        self.0.minimum
    }

    /// True while the organization has no more owners than the minimum: none of them can go,
    /// and losing access to them would leave it without an owner. Add an owner, or a recovery
    /// contact.
    async fn at_risk(&self) -> bool {
        self.0.at_risk()
    }

    /// The recovery contact; `null` when none is named.
    async fn recovery_contact(&self) -> Option<OwnerRecoveryContact> {
        self.0.contact.clone().map(Into::into)
    }

    /// A recovery waiting for its period to end; `null` when none is pending.
    async fn pending_recovery(&self) -> Option<OwnershipRecovery> {
        self.0
            .pending
            .clone()
            .map(|(recovery, user)| OwnershipRecovery(recovery, Some(user)))
    }
}
