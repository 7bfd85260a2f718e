//! Mutations on subscriber contacts and the notifications they receive.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::contacts::{self as contact_service, ContactChange, NewContact, Notification};

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::SubscriberContact;

/// A contact to add to an organization.
#[derive(InputObject)]
pub struct AddSubscriberContactInput {
    /// The organization whose mail the contact receives.
    pub organization_id: ID,
    /// Where the mail goes; one contact per address in an organization.
    pub email: String,
    /// A name to address the contact by.
    pub name: Option<String>,
    /// Ids of the notification categories to receive (see `notificationCategories`).
    pub categories: Vec<String>,
}

/// The result of `addSubscriberContact`.
#[derive(SimpleObject)]
pub struct AddSubscriberContactPayload {
    /// The contact as added.
    pub subscriber_contact: SubscriberContact,
}

/// A change of a contact; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateSubscriberContactInput {
    /// The contact to change.
    pub contact_id: ID,
    /// A new name; an empty string removes it.
    pub name: Option<String>,
    /// The categories to receive from now on, replacing the current ones.
    pub categories: Option<Vec<String>>,
}

/// The result of `updateSubscriberContact`.
#[derive(SimpleObject)]
pub struct UpdateSubscriberContactPayload {
    /// The contact as changed.
    pub subscriber_contact: SubscriberContact,
}

/// The contact to remove.
#[derive(InputObject)]
pub struct RemoveSubscriberContactInput {
    /// The contact to remove; its unsubscribe links stop naming anyone.
    pub contact_id: ID,
}

/// The result of `removeSubscriberContact`.
#[derive(SimpleObject)]
pub struct RemoveSubscriberContactPayload {
    /// The ID the removed contact had.
    pub removed_contact_id: ID,
}

/// A notification to mail to an organization's contacts of one category.
#[derive(InputObject)]
pub struct SendNotificationInput {
    /// The organization sending it.
    pub organization_id: ID,
    /// The notification category (an id of `notificationCategories`); its `sendKey` is needed.
    pub category: String,
    /// One line of at most 200 characters.
    pub subject: String,
    /// Plain text of at most 20,000 characters; an unsubscribe link is appended to each mail.
    pub body: String,
}

/// The result of `sendNotification`.
#[derive(SimpleObject)]
pub struct SendNotificationPayload {
    /// How many mails were queued: one per contact receiving the category.
    pub recipients: u64,
}

/// The unsubscribe link's token.
#[derive(InputObject)]
pub struct UnsubscribeInput {
    /// The token of the link in a notification (`token=` in its unsubscribe address).
    pub token: String,
    /// Stop every category, not only the one the mail belonged to.
    #[graphql(default = false)]
    pub everything: bool,
}

/// The result of `unsubscribe`.
#[derive(SimpleObject)]
pub struct UnsubscribePayload {
    /// The address that no longer receives the category (or any, with `everything`).
    pub email: String,
    /// The organization whose mail it was.
    pub organization_name: String,
    /// The id of the category the link belonged to.
    pub category: String,
    /// Whether every category was stopped.
    pub everything: bool,
}

/// Mutations on subscriber contacts.
#[derive(Default)]
pub struct ContactMutations;

#[Object]
impl ContactMutations {
    /// Adds a subscriber contact: an address that receives the chosen notification categories
    /// and never signs in (`contacts.manage`).
    async fn add_subscriber_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, address, name and categories.")] input: AddSubscriberContactInput,
    ) -> ApiResult<AddSubscriberContactPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let contact = contact_service::add(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            NewContact {
                organization_id,
                email: &input.email,
                name: input.name.as_deref(),
                categories: &input.categories,
            },
        )
        .await?;
        Ok(AddSubscriberContactPayload {
            subscriber_contact: SubscriberContact(contact),
        })
    }

    /// Renames a contact or sets the categories it receives (`contacts.manage`).
    async fn update_subscriber_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact and what changes.")] input: UpdateSubscriberContactInput,
    ) -> ApiResult<UpdateSubscriberContactPayload> {
        let contact_id = ids::decode("contactId", NodeKind::SubscriberContact, &input.contact_id)?;
        let contact = contact_service::update(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            ContactChange {
                contact_id,
                name: input.name.as_deref(),
                categories: input.categories.as_deref(),
            },
        )
        .await?;
        Ok(UpdateSubscriberContactPayload {
            subscriber_contact: SubscriberContact(contact),
        })
    }

    /// Removes a contact (`contacts.manage`).
    async fn remove_subscriber_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to remove.")] input: RemoveSubscriberContactInput,
    ) -> ApiResult<RemoveSubscriberContactPayload> {
        let contact_id = ids::decode("contactId", NodeKind::SubscriberContact, &input.contact_id)?;
        let removed = contact_service::remove(app(ctx), &state(ctx).meta, principal(ctx)?, contact_id).await?;
        Ok(RemoveSubscriberContactPayload {
            removed_contact_id: ids::encode(NodeKind::SubscriberContact, removed),
        })
    }

    /// Mails a notification to every contact receiving its category, each mail with its own
    /// unsubscribe link, all queued in one transaction (the category's `sendKey`).
    async fn send_notification(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, category, subject and text.")] input: SendNotificationInput,
    ) -> ApiResult<SendNotificationPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let recipients = contact_service::notify(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            Notification {
                organization_id,
                category: &input.category,
                subject: &input.subject,
                body: &input.body,
            },
        )
        .await?;
        Ok(SendNotificationPayload { recipients })
    }

    /// Stops a contact's mail of the link's category (or of every category) by the token of
    /// the link in a notification; needs no sign-in. Repeating it is harmless.
    async fn unsubscribe(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The link's token and how much to stop.")] input: UnsubscribeInput,
    ) -> ApiResult<UnsubscribePayload> {
        let target = contact_service::unsubscribe(app(ctx), &state(ctx).meta, &input.token, input.everything).await?;
        Ok(UnsubscribePayload {
            email: target.email,
            organization_name: target.organization_name,
            category: target.category,
            everything: input.everything,
        })
    }
}
