//! Owner safety: an organization keeps a minimum of owners (the plan's `minOwners`, at least
//! the catalog's), its owners are warned while it has no more than that, and they may name a
//! recovery contact: an address, proven by a mailed link, through which someone can recover
//! ownership the day no owner is left. A recovery proves the address again, then waits (a week
//! by default) while every owner is mailed and may cancel it; only then may the requester, signed
//! in, complete it and become an owner.
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{
    memberships, organizations as org_rows, owner_recovery_contacts as contacts, ownership_recoveries as recoveries,
    users,
};

use super::audit::{self, Actor, Event};
use super::bindings::{self, Target};
use super::error::{DomainError, DomainResult};
use super::mailer::{self, Outgoing};
use super::organizations::{self, actor_of, member_access};
use super::validate::Email;
use super::{App, Principal, RequestMeta, builtins, new_id, secrets};

/// Prefix of recovery tokens, so that secret scanners can recognise them.
pub const TOKEN_PREFIX: &str = "ghv_";
/// How long the link proving a new recovery contact's address works.
pub const VERIFY_TTL: Duration = Duration::hours(72);
/// How long the link that starts a recovery works.
pub const START_TTL: Duration = Duration::hours(1);
/// At most one mail to the recovery contact per this interval, however often it is asked for.
pub const MAIL_INTERVAL: Duration = Duration::minutes(10);

/// Namings of a recovery contact per organization per day.
const CONTACT_CHANGES: super::rate_limit::Limit = super::rate_limit::Limit {
    scope: "recovery_contact",
    max: 5,
    window: Duration::days(1),
};
/// Requests for a recovery link per client address per hour.
const REQUESTS_PER_ADDRESS: super::rate_limit::Limit = super::rate_limit::Limit {
    scope: "recovery_request",
    max: 20,
    window: Duration::hours(1),
};

const VERIFY: &str = "VERIFY";
const START: &str = "START";
pub const PENDING: &str = "PENDING";

/// How safe an organization's ownership is.
#[derive(Clone, Debug)]
pub struct Safety {
    /// People holding `owner` (service accounts are not counted).
    pub owners: u64,
    pub minimum: u64,
    pub contact: Option<contacts::Model>,
    /// A pending recovery and the account that started it.
    pub pending: Option<(recoveries::Model, users::Model)>,
}

impl Safety {
    /// With no more owners than the minimum, losing one more is impossible; so is any
    /// owner leaving. The owners should add one, or a recovery contact.
    pub fn at_risk(&self) -> bool {
        self.owners <= self.minimum
    }
}

/// Owners the organization must keep on its plan.
pub fn minimum(app: &App, plan: &str) -> u64 {
    let catalog = app.catalog.role("owner").map_or(1, |r| r.min_holders as u64);
    Ord::max(catalog, app.settings.plan_limits.for_plan(plan).min_owners)
}

async fn owner_memberships<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Vec<Uuid>> {
    bindings::holders(
        conn,
        organization_id,
        &[builtins::role_id("owner")],
        app.now(),
        bindings::Through::Own,
    )
    .await
}

/// How many people hold `owner` (a service account holding it keeps nobody in charge).
async fn owner_people<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<u64> {
    let owners = owner_memberships(conn, app, organization_id).await?;
    Ok(bindings::people_among(conn, &owners).await? as u64)
}

/// Owners' addresses, to tell them about recovery.
async fn owner_addresses<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Vec<String>> {
    let memberships = owner_memberships(conn, app, organization_id).await?;
    let user_ids: Vec<Uuid> = memberships::Entity::find()
        .filter(memberships::Column::Id.is_in(memberships))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(user_ids))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|u| u.email)
        .collect())
}

/// The organization's owner count, minimum, recovery contact and pending recovery.
pub async fn safety(app: &App, organization: &org_rows::Model) -> DomainResult<Safety> {
    let conn = &app.store.conn;
    Ok(Safety {
        owners: owner_people(conn, app, organization.id).await?,
        minimum: minimum(app, &organization.plan),
        contact: contacts::Entity::find_by_id(organization.id).one(conn).await?,
        pending: match pending(conn, organization.id).await? {
            Some(recovery) => users::Entity::find_by_id(recovery.requester_user_id)
                .one(conn)
                .await?
                .map(|user| (recovery, user)),
            None => None,
        },
    })
}

async fn pending<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> DomainResult<Option<recoveries::Model>> {
    Ok(recoveries::Entity::find()
        .filter(recoveries::Column::OrganizationId.eq(organization_id))
        .filter(recoveries::Column::Status.eq(PENDING))
        .one(conn)
        .await?)
}

async fn mail<C: ConnectionTrait>(conn: &C, app: &App, to: &str, subject: String, body: String) -> DomainResult<()> {
    mailer::enqueue(
        conn,
        app.now(),
        Outgoing {
            recipient: to,
            subject,
            body,
            kind: "owner_recovery",
            invitation_id: None,
            listed: None,
        },
    )
    .await
}

async fn mail_owners<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    subject: &str,
    body: &str,
) -> DomainResult<()> {
    for owner in owner_addresses(conn, app, organization_id).await? {
        mail(conn, app, &owner, subject.to_owned(), body.to_owned()).await?;
    }
    Ok(())
}

fn link(app: &App, action: &str, token: &str) -> String {
    format!("{}/owner-recovery/{action}?token={token}", app.settings.public_url)
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    meta: &RequestMeta,
    app: &App,
    organization_id: Uuid,
    actor: Actor,
    action: &'static str,
    details: serde_json::Value,
) -> DomainResult<()> {
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization_id),
            actor,
            action,
            target: Some(("Organization", organization_id)),
            details,
        },
    )
    .await
}

/// Names (or replaces) the recovery contact and mails it a link proving the address; every owner
/// is told. Owners only (`organization.transfer`), signed in: no integration may open a way to
/// ownership.
pub async fn set_contact(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    email: &str,
) -> DomainResult<contacts::Model> {
    principal.require_session("naming a recovery contact")?;
    let email = Email::parse("email", email)?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    member_access(&tx, app, principal, organization.id)
        .await?
        .require(app, "organization.transfer", None)?;
    if pending(&tx, organization.id).await?.is_some() {
        return Err(DomainError::Conflict {
            message: "a recovery of ownership is pending; cancel it before changing the recovery contact".to_owned(),
            field: None,
            existing: None,
        });
    }
    // Each naming mails an address of the owner's choosing: a few a day is plenty.
    super::rate_limit::take(&tx, &CONTACT_CHANGES, &organization.id.to_string(), now).await?;
    contacts::Entity::delete_by_id(organization.id).exec(&tx).await?;
    let token = secrets::generate(TOKEN_PREFIX);
    let contact = contacts::ActiveModel {
        organization_id: Set(organization.id),
        email: Set(email.display().to_owned()),
        email_canonical: Set(email.canonical().to_owned()),
        token_hash: Set(Some(secrets::digest(&token))),
        token_purpose: Set(VERIFY.to_owned()),
        token_expires_at: Set(Some(now + VERIFY_TTL)),
        verified_at: Set(None),
        // The interval paces requests for recovery links, not this confirmation.
        last_mailed_at: Set(None),
        set_by_user_id: Set(Some(principal.user.id)),
        created_at: Set(now),
    }
    .insert(&tx)
    .await?;
    mail(
        &tx,
        app,
        &contact.email,
        format!("Recovery contact for {} on Guildhall", organization.name),
        format!(
            "{who} named this address the recovery contact of {org} on Guildhall: if the organization ever has no owner left, \
             it is the way to recover ownership.\n\nConfirm the address here (the link works for 72 hours):\n{url}\n\n\
             If you did not expect this, ignore this message.\n",
            who = principal.user.name,
            org = organization.name,
            url = link(app, "confirm", &token),
        ),
    )
    .await?;
    mail_owners(
        &tx,
        app,
        organization.id,
        &format!("{}: recovery contact changed", organization.name),
        &format!(
            "{who} named {email} the recovery contact of {org}. Once confirmed, that address can ask to recover ownership; \
             every owner is told then and may cancel within the waiting period.\n",
            who = principal.user.name,
            email = contact.email,
            org = organization.name,
        ),
    )
    .await?;
    record(
        &tx,
        meta,
        app,
        organization.id,
        actor_of(principal),
        "owner_recovery.contact_set",
        json!({ "email": contact.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(contact)
}

/// Removes the recovery contact (owners only, signed in); a pending recovery is cancelled with it.
pub async fn remove_contact(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
) -> DomainResult<()> {
    principal.require_session("removing the recovery contact")?;
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    member_access(&tx, app, principal, organization.id)
        .await?
        .require(app, "organization.transfer", None)?;
    let contact = contacts::Entity::find_by_id(organization.id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("recovery contact"))?;
    if let Some(recovery) = pending(&tx, organization.id).await? {
        decide_pending(&tx, app, organization.id, "CANCELLED", Some(principal.user.id)).await?;
        mail(
            &tx,
            app,
            &recovery.email,
            format!("Recovery of {} cancelled", organization.name),
            format!(
                "An owner of {org} removed this address as its recovery contact, which cancelled the recovery of ownership started through it.\n",
                org = organization.name
            ),
        )
        .await?;
        record(
            &tx,
            meta,
            app,
            organization.id,
            actor_of(principal),
            "owner_recovery.cancel",
            json!({ "recoveryId": recovery.id, "by": "contact removal" }),
        )
        .await?;
    }
    contacts::Entity::delete_by_id(organization.id).exec(&tx).await?;
    record(
        &tx,
        meta,
        app,
        organization.id,
        actor_of(principal),
        "owner_recovery.contact_remove",
        json!({ "email": contact.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn decide_pending<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    status: &str,
    by: Option<Uuid>,
) -> DomainResult<u64> {
    Ok(recoveries::Entity::update_many()
        .col_expr(recoveries::Column::Status, Expr::value(status))
        .col_expr(recoveries::Column::DecidedAt, Expr::value(app.now()))
        .col_expr(recoveries::Column::DecidedByUserId, Expr::value(by))
        .filter(recoveries::Column::OrganizationId.eq(organization_id))
        .filter(recoveries::Column::Status.eq(PENDING))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The contact a live link of `purpose` names, consuming the link (single use).
async fn take_link<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    token: &str,
    purpose: &str,
) -> DomainResult<contacts::Model> {
    let invalid = || DomainError::bad_input("token", "the link is not valid or has expired; ask for a new one");
    let token = token.trim();
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(invalid());
    }
    let hash = secrets::digest(token);
    let contact = contacts::Entity::find()
        .filter(contacts::Column::TokenHash.eq(hash.clone()))
        .one(conn)
        .await?
        .ok_or_else(invalid)?;
    if contact.token_purpose != purpose || contact.token_expires_at.is_none_or(|end| end <= app.now()) {
        return Err(invalid());
    }
    // Consume it; of two uses at once only one changes the row.
    let taken = contacts::Entity::update_many()
        .col_expr(contacts::Column::TokenHash, Expr::value(None::<String>))
        .col_expr(contacts::Column::TokenExpiresAt, Expr::value(None::<DateTime<Utc>>))
        .filter(contacts::Column::OrganizationId.eq(contact.organization_id))
        .filter(contacts::Column::TokenHash.eq(hash))
        .exec(conn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(invalid());
    }
    Ok(contact)
}

/// Whether a live link of `purpose` exists, read without any lock: a made-up link costs one
/// read and never the write lock.
async fn link_exists(app: &App, token: &str, purpose: &str) -> DomainResult<()> {
    let invalid = || DomainError::bad_input("token", "the link is not valid or has expired; ask for a new one");
    let token = token.trim();
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(invalid());
    }
    let found = contacts::Entity::find()
        .filter(contacts::Column::TokenHash.eq(secrets::digest(token)))
        .filter(contacts::Column::TokenPurpose.eq(purpose))
        .filter(contacts::Column::TokenExpiresAt.gt(app.now()))
        .one(&app.store.conn)
        .await?;
    found.map(drop).ok_or_else(invalid)
}

/// Confirms the recovery contact's address by the link mailed to it; needs no sign-in.
pub async fn confirm_contact(app: &App, meta: &RequestMeta, token: &str) -> DomainResult<contacts::Model> {
    link_exists(app, token, VERIFY).await?;
    let tx = app.store.begin_write().await?;
    let contact = take_link(&tx, app, token, VERIFY).await?;
    organizations::lock(&tx, contact.organization_id).await?;
    let mut model: contacts::ActiveModel = contact.into();
    model.verified_at = Set(Some(app.now()));
    let contact = model.update(&tx).await?;
    record(
        &tx,
        meta,
        app,
        contact.organization_id,
        Actor {
            user_id: None,
            token_id: None,
        },
        "owner_recovery.contact_confirm",
        json!({ "email": contact.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(contact)
}

/// Asks for the link that starts a recovery. It is mailed to the organization's confirmed
/// recovery contact when `email` is that address, at most once per [`MAIL_INTERVAL`]; the
/// answer is the same whatever the organization, address or outcome, so nothing is learned.
pub async fn request(app: &App, meta: &RequestMeta, organization_id: Uuid, email: &str) -> DomainResult<()> {
    let now = app.now();
    if let Some(address) = &meta.client_address {
        super::rate_limit::take(
            &app.store.conn,
            &REQUESTS_PER_ADDRESS,
            &super::rate_limit::address_subject(address),
            now,
        )
        .await?;
    }
    let Ok(email) = Email::parse("email", email) else {
        return Ok(());
    };
    // Matched without any lock first: a miss never takes the write lock.
    let matched = contacts::Entity::find_by_id(organization_id)
        .one(&app.store.conn)
        .await?
        .is_some_and(|c| c.verified_at.is_some() && c.email_canonical == email.canonical());
    if !matched {
        return Ok(());
    }
    let tx = app.store.begin_write().await?;
    let Some(organization) = org_rows::Entity::find_by_id(organization_id).one(&tx).await? else {
        return Ok(());
    };
    let contact = contacts::Entity::find_by_id(organization.id).one(&tx).await?;
    let Some(contact) = contact.filter(|c| c.verified_at.is_some() && c.email_canonical == email.canonical()) else {
        return Ok(());
    };
    if pending(&tx, organization.id).await?.is_some() {
        return Ok(());
    }
    let token = secrets::generate(TOKEN_PREFIX);
    // Claimed with the interval in the statement itself, so that concurrent asks send one mail.
    let claimed = contacts::Entity::update_many()
        .col_expr(contacts::Column::TokenHash, Expr::value(secrets::digest(&token)))
        .col_expr(contacts::Column::TokenPurpose, Expr::value(START))
        .col_expr(contacts::Column::TokenExpiresAt, Expr::value(now + START_TTL))
        .col_expr(contacts::Column::LastMailedAt, Expr::value(now))
        .filter(contacts::Column::OrganizationId.eq(contact.organization_id))
        .filter(
            sea_orm::Condition::any()
                .add(contacts::Column::LastMailedAt.is_null())
                .add(contacts::Column::LastMailedAt.lte(now - MAIL_INTERVAL)),
        )
        .exec(&tx)
        .await?;
    if claimed.rows_affected == 1 {
        mail(
            &tx,
            app,
            &contact.email,
            format!("Recover ownership of {} on Guildhall", organization.name),
            format!(
                "Someone asked to recover ownership of {org} through this address, its recovery contact.\n\n\
                 To go on, sign in to Guildhall as the person who should become owner and open this link within an hour:\n{url}\n\n\
                 Every owner will be told and may cancel during the waiting period. If you did not ask for this, ignore this message.\n",
                org = organization.name,
                url = link(app, "start", &token),
            ),
        )
        .await?;
        record(
            &tx,
            meta,
            app,
            organization.id,
            Actor {
                user_id: None,
                token_id: None,
            },
            "owner_recovery.request",
            json!({ "email": contact.email }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Starts a recovery by the link mailed to the recovery contact, for the signed-in caller, who
/// may complete it after the waiting period; every owner is mailed and may cancel.
pub async fn start(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    token: &str,
) -> DomainResult<recoveries::Model> {
    principal.require_session("recovering ownership")?;
    super::self_service::require_verified(principal, "recovering ownership")?;
    if principal.user.kind != "HUMAN" {
        return Err(DomainError::Forbidden {
            message: "only a person can recover ownership".to_owned(),
            key: None,
        });
    }
    link_exists(app, token, START).await?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let contact = take_link(&tx, app, token, START).await?;
    let organization = organizations::lock(&tx, contact.organization_id).await?;
    if contact.verified_at.is_none() {
        return Err(DomainError::bad_input("token", "the recovery contact is not confirmed"));
    }
    if pending(&tx, organization.id).await?.is_some() {
        return Err(DomainError::Conflict {
            message: "a recovery of ownership is already pending".to_owned(),
            field: None,
            existing: None,
        });
    }
    let recovery = recoveries::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        requester_user_id: Set(principal.user.id),
        email: Set(contact.email.clone()),
        status: Set(PENDING.to_owned()),
        requested_at: Set(now),
        ready_at: Set(now + app.settings.owner_recovery_wait),
        decided_at: Set(None),
        decided_by_user_id: Set(None),
    }
    .insert(&tx)
    .await?;
    mail_owners(
        &tx,
        app,
        organization.id,
        &format!("{}: someone is recovering ownership", organization.name),
        &format!(
            "{who} ({account}) started to recover ownership of {org} through its recovery contact {email}.\n\n\
             Unless an owner cancels it (cancelOwnershipRecovery, or the organization's settings), they may become an owner \
             from {ready}.\n",
            who = principal.user.name,
            account = principal.user.email.as_deref().unwrap_or("no address"),
            org = organization.name,
            email = contact.email,
            ready = recovery.ready_at.format("%Y-%m-%d %H:%M UTC"),
        ),
    )
    .await?;
    record(
        &tx,
        meta,
        app,
        organization.id,
        actor_of(principal),
        "owner_recovery.start",
        json!({ "recoveryId": recovery.id, "email": contact.email, "readyAt": recovery.ready_at }),
    )
    .await?;
    tx.commit().await?;
    Ok(recovery)
}

/// Cancels the pending recovery (owners only); the recovery contact is told.
pub async fn cancel(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
) -> DomainResult<recoveries::Model> {
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    member_access(&tx, app, principal, organization.id)
        .await?
        .require(app, "organization.transfer", None)?;
    let recovery = pending(&tx, organization.id)
        .await?
        .ok_or(DomainError::NotFound("pending recovery"))?;
    decide_pending(&tx, app, organization.id, "CANCELLED", Some(principal.user.id)).await?;
    mail(
        &tx,
        app,
        &recovery.email,
        format!("Recovery of {} cancelled", organization.name),
        format!(
            "An owner of {org} cancelled the recovery of ownership started through this address.\n",
            org = organization.name
        ),
    )
    .await?;
    record(
        &tx,
        meta,
        app,
        organization.id,
        actor_of(principal),
        "owner_recovery.cancel",
        json!({ "recoveryId": recovery.id }),
    )
    .await?;
    tx.commit().await?;
    let mut recovery = recovery;
    recovery.status = "CANCELLED".to_owned();
    recovery.decided_by_user_id = Some(principal.user.id);
    Ok(recovery)
}

/// Completes the caller's own pending recovery once its waiting period is over: the caller
/// joins (if not a member) and holds `owner`; every owner is told.
pub async fn complete(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
) -> DomainResult<memberships::Model> {
    principal.require_session("recovering ownership")?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let recovery = pending(&tx, organization.id)
        .await?
        .filter(|r| r.requester_user_id == principal.user.id)
        // Without a recovery of one's own, the organization does not exist for the caller.
        .ok_or(DomainError::NotFound("organization"))?;
    if recovery.ready_at > now {
        return Err(DomainError::Forbidden {
            message: format!(
                "the waiting period ends at {}; the owners may still cancel until then",
                recovery.ready_at.format("%Y-%m-%d %H:%M UTC")
            ),
            key: None,
        });
    }
    let membership = match memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization.id))
        .filter(memberships::Column::UserId.eq(principal.user.id))
        .one(&tx)
        .await?
    {
        Some(membership) => membership,
        // Recovery is how an organization stays owned; a full member list does not stop it.
        None => super::members::add_member_in(&tx, app, organization.id, principal.user.id, true).await?,
    };
    let target = Target {
        organization: organization.clone(),
        role: bindings::resolve_role(&tx, organization.id, builtins::role_id("owner")).await?,
        membership: membership.clone(),
        workspace_id: None,
    };
    let terms = bindings::Terms {
        recovery: true,
        ..Default::default()
    };
    match bindings::bind(&tx, app, &target, None, &terms).await {
        Ok(_) | Err(DomainError::Conflict { .. }) => {}
        Err(other) => return Err(other),
    }
    decide_pending(&tx, app, organization.id, "COMPLETED", Some(principal.user.id)).await?;
    mail_owners(
        &tx,
        app,
        organization.id,
        &format!("{}: ownership recovered", organization.name),
        &format!(
            "{who} recovered ownership of {org} through its recovery contact and is now an owner.\n",
            who = principal.user.name,
            org = organization.name,
        ),
    )
    .await?;
    record(
        &tx,
        meta,
        app,
        organization.id,
        actor_of(principal),
        "owner_recovery.complete",
        json!({ "recoveryId": recovery.id, "membershipId": membership.id }),
    )
    .await?;
    tx.commit().await?;
    Ok(membership)
}
