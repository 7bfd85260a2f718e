//! Subscriber contacts: people who receive an organization's mail of the notification
//! categories they were given, and nothing else. A contact is an address and a name, never a
//! user: it has no password, cannot sign in, is no member, holds no key and is counted against
//! no member limit. Holders of `contacts.manage` keep the list; holders of a category's send key
//! mail it; every such mail carries a link that unsubscribes its recipient without signing in.
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{
    contact_opt_outs as opt_outs, mail_outbox, organizations as org_rows, subscriber_contact_categories as categories,
    subscriber_contacts as contacts, unsubscribe_links as links,
};

use super::audit::{self, Actor, Event};
use super::error::{DomainError, DomainResult};
use super::mailer::{self, Listed, Outgoing};
use super::organizations::{self, actor_of, member_access};
use super::page::{Page, PageRequest};
use super::validate::{Email, display_name};
use super::{App, Principal, RequestMeta, new_id, secrets};

/// Prefix of unsubscribe tokens, so that secret scanners can recognise them.
pub const TOKEN_PREFIX: &str = "ghu_";

/// Most contacts one organization may keep (a mail of a category goes to at most this many).
pub const MAX_CONTACTS: u64 = 1_000;

/// Longest subject and body of a notification.
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 20_000;

/// A contact with the categories it receives (in the catalog's order).
#[derive(Clone, Debug)]
pub struct Contact {
    pub row: contacts::Model,
    pub categories: Vec<String>,
}

/// The link that unsubscribes one contact from one category.
pub fn unsubscribe_url(app: &App, token: &str) -> String {
    format!("{}/unsubscribe?token={token}", app.settings.api_url)
}

/// Category ids checked against the catalog, without repeats, in the catalog's order.
fn parse_categories(app: &App, given: &[String]) -> DomainResult<Vec<String>> {
    let wanted: BTreeSet<&str> = given.iter().map(|c| c.trim()).collect();
    if let Some(unknown) = wanted.iter().find(|c| app.catalog.notification_category(c).is_none()) {
        return Err(DomainError::bad_input(
            "categories",
            format!("`{unknown}` is not a notification category of the catalog"),
        ));
    }
    Ok(app
        .catalog
        .notification_categories
        .iter()
        .filter(|c| wanted.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect())
}

fn parse_name(name: Option<&str>) -> DomainResult<Option<String>> {
    match name.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => display_name("name", name).map(Some),
    }
}

/// BAD_USER_INPUT when the address left one of `chosen`: only its owner may come back.
async fn refuse_opted_out<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    email_canonical: &str,
    chosen: &[String],
) -> DomainResult<()> {
    if chosen.is_empty() {
        return Ok(());
    }
    let left = opt_outs::Entity::find()
        .filter(opt_outs::Column::OrganizationId.eq(organization_id))
        .filter(opt_outs::Column::EmailCanonical.eq(email_canonical.to_owned()))
        .filter(opt_outs::Column::Category.is_in(chosen.to_vec()))
        .one(conn)
        .await?;
    match left {
        Some(left) => Err(DomainError::bad_input(
            "categories",
            format!(
                "this address unsubscribed from `{}`; it is not subscribed to it again on anyone's behalf",
                left.category
            ),
        )),
        None => Ok(()),
    }
}

async fn write_categories<C: ConnectionTrait>(conn: &C, contact_id: Uuid, chosen: &[String]) -> DomainResult<()> {
    categories::Entity::delete_many()
        .filter(categories::Column::ContactId.eq(contact_id))
        .exec(conn)
        .await?;
    if chosen.is_empty() {
        return Ok(());
    }
    categories::Entity::insert_many(chosen.iter().map(|category| categories::ActiveModel {
        contact_id: Set(contact_id),
        category: Set(category.clone()),
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The categories of each contact, in the catalog's order, in one statement.
pub async fn categories_of<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    contact_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<String>>> {
    let rows = categories::Entity::find()
        .filter(categories::Column::ContactId.is_in(contact_ids.to_vec()))
        .all(conn)
        .await?;
    let order = |id: &str| {
        app.catalog
            .notification_categories
            .iter()
            .position(|c| c.id == id)
            .unwrap_or(usize::MAX)
    };
    let mut out: HashMap<Uuid, Vec<String>> = contact_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        out.entry(row.contact_id).or_default().push(row.category);
    }
    for list in out.values_mut() {
        list.sort_by_key(|c| order(c));
    }
    Ok(out)
}

async fn with_categories<C: ConnectionTrait>(conn: &C, app: &App, row: contacts::Model) -> DomainResult<Contact> {
    let categories = categories_of(conn, app, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    Ok(Contact { row, categories })
}

/// What adding a contact needs.
pub struct NewContact<'a> {
    pub organization_id: Uuid,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub categories: &'a [String],
}

/// Adds a subscriber contact (`contacts.manage`); CONFLICT when the address already is one.
pub async fn add(app: &App, meta: &RequestMeta, principal: &Principal, new: NewContact<'_>) -> DomainResult<Contact> {
    let email = Email::parse("email", new.email)?;
    let name = parse_name(new.name)?;
    let chosen = parse_categories(app, new.categories)?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    // The organization's row lock orders concurrent additions, so the count below holds.
    let organization = organizations::lock(&tx, new.organization_id).await?;
    let actor = member_access(&tx, app, principal, organization.id).await?;
    actor.require(app, "contacts.manage", None)?;
    let existing = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(organization.id))
        .filter(contacts::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .one(&tx)
        .await?;
    if let Some(existing) = existing {
        return Err(DomainError::Conflict {
            message: "this address already is a subscriber contact of the organization".to_owned(),
            field: Some("email".to_owned()),
            existing: Some(("SubscriberContact", existing.id)),
        });
    }
    let kept = contacts::Entity::find()
        .filter(contacts::Column::OrganizationId.eq(organization.id))
        .count(&tx)
        .await?;
    refuse_opted_out(&tx, organization.id, email.canonical(), &chosen).await?;
    if kept >= MAX_CONTACTS {
        return Err(DomainError::LimitExceeded {
            limit: "contacts".to_owned(),
            message: format!("an organization keeps at most {MAX_CONTACTS} subscriber contacts"),
        });
    }
    let row = contacts::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        email: Set(email.display().to_owned()),
        email_canonical: Set(email.canonical().to_owned()),
        name: Set(name),
        created_by_user_id: Set(Some(principal.user.id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await?;
    write_categories(&tx, row.id, &chosen).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "contact.add",
            target: Some(("SubscriberContact", row.id)),
            details: json!({ "email": row.email, "categories": chosen }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Contact {
        row,
        categories: chosen,
    })
}

/// A contact of an organization where the caller holds `contacts.manage`: NOT_FOUND for
/// callers outside the organization (it does not exist for them), FORBIDDEN for members
/// without the key.
async fn for_manager<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    contact_id: Uuid,
) -> DomainResult<(contacts::Model, org_rows::Model)> {
    let contact = contacts::Entity::find_by_id(contact_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("subscriber contact"))?;
    let organization = organizations::lock(conn, contact.organization_id).await?;
    let actor = super::access::for_principal(conn, app, principal, organization.id)
        .await?
        .ok_or(DomainError::NotFound("subscriber contact"))?;
    actor.require(app, "contacts.manage", None)?;
    // Read again under the organization's lock: a contact removed meanwhile is gone.
    let contact = contacts::Entity::find_by_id(contact_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("subscriber contact"))?;
    Ok((contact, organization))
}

/// What a change of a contact may carry; `None` leaves a part as it is.
pub struct ContactChange<'a> {
    pub contact_id: Uuid,
    /// `Some("")` clears the name.
    pub name: Option<&'a str>,
    pub categories: Option<&'a [String]>,
}

/// Renames a contact or sets the categories it receives (`contacts.manage`).
pub async fn update(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    change: ContactChange<'_>,
) -> DomainResult<Contact> {
    let name = change.name.map(|n| parse_name(Some(n))).transpose()?;
    let chosen = change.categories.map(|c| parse_categories(app, c)).transpose()?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let (contact, organization) = for_manager(&tx, app, principal, change.contact_id).await?;
    let before = with_categories(&tx, app, contact.clone()).await?;
    if let Some(chosen) = &chosen {
        // Only categories it does not receive yet; what it kept is no new subscription.
        let added: Vec<String> = chosen
            .iter()
            .filter(|c| !before.categories.contains(c))
            .cloned()
            .collect();
        refuse_opted_out(&tx, organization.id, &contact.email_canonical, &added).await?;
    }
    let mut model: contacts::ActiveModel = contact.into();
    if let Some(name) = name.clone() {
        model.name = Set(name);
    }
    model.updated_at = Set(now);
    let row = model.update(&tx).await?;
    if let Some(chosen) = &chosen {
        write_categories(&tx, row.id, chosen).await?;
    }
    let categories = chosen.unwrap_or(before.categories.clone());
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "contact.update",
            target: Some(("SubscriberContact", row.id)),
            details: json!({
                "email": row.email,
                "categoriesBefore": before.categories,
                "categories": categories,
                "renamed": name.is_some(),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Contact { row, categories })
}

/// Removes a contact, its categories and its unsubscribe links (`contacts.manage`).
pub async fn remove(app: &App, meta: &RequestMeta, principal: &Principal, contact_id: Uuid) -> DomainResult<Uuid> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let (contact, organization) = for_manager(&tx, app, principal, contact_id).await?;
    contacts::Entity::delete_by_id(contact.id).exec(&tx).await?;
    drop_queued(&tx, contact.id, None).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "contact.remove",
            target: Some(("SubscriberContact", contact.id)),
            details: json!({ "email": contact.email }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(contact.id)
}

/// A page of an organization's contacts in the order they were added, optionally only those
/// receiving one category.
pub async fn page(
    app: &App,
    organization_id: Uuid,
    category: Option<&str>,
    request: PageRequest,
) -> DomainResult<Page<Contact>> {
    let mut query = filtered(organization_id, category)
        .order_by_asc(contacts::Column::Id)
        .limit(request.first + 1);
    if let Some(after) = request.after {
        query = query.filter(contacts::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut lists = categories_of(&app.store.conn, app, &ids).await?;
    Ok(Page::from_rows(
        rows.into_iter()
            .map(|row| {
                let categories = lists.remove(&row.id).unwrap_or_default();
                (row.id, Contact { row, categories })
            })
            .collect(),
        request.first,
    ))
}

/// How many contacts the organization keeps (receiving `category`, when given).
pub async fn count(app: &App, organization_id: Uuid, category: Option<&str>) -> DomainResult<u64> {
    Ok(filtered(organization_id, category).count(&app.store.conn).await?)
}

fn filtered(organization_id: Uuid, category: Option<&str>) -> sea_orm::Select<contacts::Entity> {
    let query = contacts::Entity::find().filter(contacts::Column::OrganizationId.eq(organization_id));
    match category {
        None => query,
        Some(category) => query.filter(
            contacts::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(categories::Column::ContactId)
                    .from(categories::Entity)
                    .and_where(categories::Column::Category.eq(category))
                    .to_owned(),
            ),
        ),
    }
}

/// A contact by id, whichever organization it belongs to.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<Contact>> {
    match contacts::Entity::find_by_id(id).one(&app.store.conn).await? {
        Some(row) => Ok(Some(with_categories(&app.store.conn, app, row).await?)),
        None => Ok(None),
    }
}

/// A notification to mail to every contact receiving its category.
pub struct Notification<'a> {
    pub organization_id: Uuid,
    pub category: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Queues one mail per contact receiving the category, each with its own unsubscribe link,
/// in one transaction (all or none). Needs the category's send key. Returns how many.
pub async fn notify(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    notification: Notification<'_>,
) -> DomainResult<u64> {
    let category = app
        .catalog
        .notification_category(notification.category.trim())
        .ok_or_else(|| {
            DomainError::bad_input(
                "category",
                format!(
                    "`{}` is not a notification category of the catalog",
                    notification.category
                ),
            )
        })?;
    let subject = notification.subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS || subject.contains(['\r', '\n']) {
        return Err(DomainError::bad_input(
            "subject",
            format!("the subject is one line of 1 to {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    let body = notification.body.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(DomainError::bad_input(
            "body",
            format!("the body is 1 to {MAX_BODY_CHARS} characters"),
        ));
    }
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, notification.organization_id).await?;
    let actor = member_access(&tx, app, principal, organization.id).await?;
    actor.require(app, &app.catalog.key(category.send_key).id, None)?;
    let recipients = filtered(organization.id, Some(&category.id))
        .order_by_asc(contacts::Column::Id)
        .all(&tx)
        .await?;
    // Counted in this transaction: a refused send counts nothing, and concurrent sends can
    // never together pass the quota.
    let quota = super::rate_limit::Limit {
        scope: "notifications",
        max: app.settings.notifications_per_day,
        window: chrono::Duration::days(1),
    };
    let sent_today =
        super::rate_limit::count_many(&tx, &quota, &organization.id.to_string(), now, recipients.len() as u64).await?;
    if sent_today > quota.max {
        return Err(DomainError::LimitExceeded {
            limit: "notifications".to_owned(),
            message: format!(
                "an organization sends at most {} notification mails a day; this send of {} would pass it",
                quota.max,
                recipients.len()
            ),
        });
    }
    let mut link_rows = Vec::with_capacity(recipients.len());
    let mut mails = Vec::with_capacity(recipients.len());
    for contact in &recipients {
        let token = secrets::generate(TOKEN_PREFIX);
        link_rows.push(links::ActiveModel {
            token_hash: Set(secrets::digest(&token)),
            contact_id: Set(contact.id),
            category: Set(category.id.clone()),
            created_at: Set(now),
        });
        let url = unsubscribe_url(app, &token);
        mails.push(Outgoing {
            recipient: &contact.email,
            subject: subject.to_owned(),
            body: format!(
                "{body}\n\n--\nYou receive {category} mail from {org} on Guildhall. To stop receiving it, open:\n{url}\n",
                category = category.name,
                org = organization.name,
            ),
            kind: "notification",
            invitation_id: None,
            listed: Some(Listed {
                unsubscribe_url: url,
                contact_id: contact.id,
                category: category.id.clone(),
            }),
        });
    }
    let mut link_rows = link_rows.into_iter().peekable();
    while link_rows.peek().is_some() {
        let chunk: Vec<links::ActiveModel> = link_rows.by_ref().take(200).collect();
        links::Entity::insert_many(chunk).exec_without_returning(&tx).await?;
    }
    mailer::enqueue_all(&tx, now, mails).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "notification.send",
            target: Some(("Organization", organization.id)),
            details: json!({ "category": category.id, "subject": subject, "recipients": recipients.len() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(recipients.len() as u64)
}

/// Whom an unsubscribe link names, for the page that confirms it.
#[derive(Clone, Debug)]
pub struct LinkTarget {
    pub email: String,
    pub organization_name: String,
    pub category: String,
    pub category_name: String,
    /// Whether the contact still receives the link's category.
    pub subscribed: bool,
}

async fn link<C: ConnectionTrait>(
    conn: &C,
    token: &str,
) -> DomainResult<Option<(links::Model, contacts::Model, org_rows::Model)>> {
    let token = token.trim();
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(link) = links::Entity::find_by_id(secrets::digest(token)).one(conn).await? else {
        return Ok(None);
    };
    let Some(contact) = contacts::Entity::find_by_id(link.contact_id).one(conn).await? else {
        return Ok(None);
    };
    let Some(organization) = org_rows::Entity::find_by_id(contact.organization_id).one(conn).await? else {
        return Ok(None);
    };
    Ok(Some((link, contact, organization)))
}

fn target_of(
    app: &App,
    link: &links::Model,
    contact: &contacts::Model,
    organization: &org_rows::Model,
    subscribed: bool,
) -> LinkTarget {
    LinkTarget {
        email: contact.email.clone(),
        organization_name: organization.name.clone(),
        category: link.category.clone(),
        category_name: app
            .catalog
            .notification_category(&link.category)
            .map_or_else(|| link.category.clone(), |c| c.name.clone()),
        subscribed,
    }
}

/// What an unsubscribe link would do; `None` for a link that names nobody (never issued, or
/// its contact was removed). Reading it changes nothing.
pub async fn inspect(app: &App, token: &str) -> DomainResult<Option<LinkTarget>> {
    let Some((link, contact, organization)) = link(&app.store.conn, token).await? else {
        return Ok(None);
    };
    let subscribed = categories::Entity::find_by_id((contact.id, link.category.clone()))
        .one(&app.store.conn)
        .await?
        .is_some();
    Ok(Some(target_of(app, &link, &contact, &organization, subscribed)))
}

/// Mail to a contact not delivered yet (of one category, or all) is not sent after all.
async fn drop_queued<C: ConnectionTrait>(conn: &C, contact_id: Uuid, category: Option<&str>) -> DomainResult<()> {
    let mut queued = mail_outbox::Entity::delete_many()
        .filter(mail_outbox::Column::ContactId.eq(contact_id))
        .filter(mail_outbox::Column::SentAt.is_null());
    if let Some(category) = category {
        queued = queued.filter(mail_outbox::Column::Category.eq(category));
    }
    queued.exec(conn).await?;
    Ok(())
}

/// Unsubscribes the link's contact from the link's category, or from every category when
/// `everything`; NOT_FOUND for a link that names nobody. The address is remembered as having
/// left (so no manager can subscribe it again), and its mail still queued is not sent.
/// Repeating it changes nothing more.
pub async fn unsubscribe(app: &App, meta: &RequestMeta, token: &str, everything: bool) -> DomainResult<LinkTarget> {
    // Looked up before any write: a made-up link costs one read, never the write lock.
    if link(&app.store.conn, token).await?.is_none() {
        return Err(DomainError::NotFound("unsubscribe link"));
    }
    let now: DateTime<Utc> = app.now();
    let tx = app.store.begin_write().await?;
    let (link, contact, organization) = link(&tx, token)
        .await?
        .ok_or(DomainError::NotFound("unsubscribe link"))?;
    let leaving: Vec<String> = if everything {
        app.catalog
            .notification_categories
            .iter()
            .map(|c| c.id.clone())
            .collect()
    } else {
        vec![link.category.clone()]
    };
    let removed = categories::Entity::delete_many()
        .filter(categories::Column::ContactId.eq(contact.id))
        .filter(categories::Column::Category.is_in(leaving.clone()))
        .exec(&tx)
        .await?
        .rows_affected;
    let recorded = opt_outs::Entity::insert_many(leaving.iter().map(|category| opt_outs::ActiveModel {
        organization_id: Set(organization.id),
        email_canonical: Set(contact.email_canonical.clone()),
        category: Set(category.clone()),
        created_at: Set(now),
    }))
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
            opt_outs::Column::OrganizationId,
            opt_outs::Column::EmailCanonical,
            opt_outs::Column::Category,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&tx)
    .await?;
    drop_queued(&tx, contact.id, (!everything).then_some(link.category.as_str())).await?;
    if removed > 0 || recorded > 0 {
        audit::record(
            &tx,
            meta,
            now,
            Event {
                organization_id: Some(organization.id),
                // The contact itself, who has no user: recorded without an actor.
                actor: Actor {
                    user_id: None,
                    token_id: None,
                },
                action: "contact.unsubscribe",
                target: Some(("SubscriberContact", contact.id)),
                details: json!({
                    "email": contact.email,
                    "category": if everything { None } else { Some(&link.category) },
                    "everything": everything,
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(target_of(app, &link, &contact, &organization, false))
}
