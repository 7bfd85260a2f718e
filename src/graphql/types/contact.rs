//! Subscriber contacts and the notification categories they receive.
use async_graphql::{ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::contacts;
use crate::graphql::connection::connection;
use crate::graphql::ids::{self, NodeKind};

connection!(
    SubscriberContactConnection,
    SubscriberContactEdge,
    SubscriberContact,
    "A page of subscriber contacts."
);

/// A kind of mail an organization sends, from the catalog.
#[derive(SimpleObject)]
pub struct NotificationCategory {
    /// Stable id, e.g. `accounting_documents`.
    pub id: String,
    /// Its name for people, e.g. "Accounting documents".
    pub name: String,
    /// What mail of the category is about.
    pub description: String,
    /// The key a caller needs in an organization to send mail of this category to its contacts.
    pub send_key: String,
}

impl NotificationCategory {
    pub fn of(catalog: &crate::authz::Catalog, category: &crate::authz::NotificationCategory) -> NotificationCategory {
        NotificationCategory {
            id: category.id.clone(),
            name: category.name.clone(),
            description: category.description.clone(),
            send_key: catalog.key(category.send_key).id.clone(),
        }
    }
}

/// Someone who receives an organization's mail of chosen categories and nothing else.
pub struct SubscriberContact(pub contacts::Contact);

/// Someone who receives an organization's mail of chosen notification categories: an address,
/// never a user. A contact cannot sign in, is no member (never listed or counted as one) and
/// holds no key. Seen by holders of `contacts.read`.
#[Object]
impl SubscriberContact {
    /// The contact's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::SubscriberContact, self.0.row.id)
    }

    /// Where the mail goes, as entered.
    async fn email(&self) -> &str {
        &self.0.row.email
    }

    /// A name to address the contact by; `null` when none was given.
    async fn name(&self) -> Option<&str> {
        self.0.row.name.as_deref()
    }

    /// Ids of the notification categories the contact receives, in the catalog's order; empty
    /// once it has unsubscribed from all of them.
    async fn categories(&self) -> &[String] {
        &self.0.categories
    }

    /// When the contact was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }

    /// When the contact was last changed by a manager.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}
