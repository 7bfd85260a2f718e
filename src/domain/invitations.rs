//! Invitations: offered role bindings for an email address, accepted at most once.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{
    invitation_role_bindings, invitations, memberships, organizations as org_rows, users, workspaces,
};

use super::access::{self, MemberAccess};
use super::accounts::{self, Credentials, SignUp};
use super::audit::{self, Event};
use super::bindings::{self, Target};
use super::error::{DomainError, DomainResult};
use super::limits::{self, Limit};
use super::mailer::{self, Outgoing};
use super::organizations::{self, actor_of, member_access};
use super::page::{Page, PageRequest};
use super::validate::Email;
use super::{App, Principal, RequestMeta, builtins, members, new_id, secrets};

/// Prefix of invitation tokens, so that secret scanners can recognise leaked ones.
pub const TOKEN_PREFIX: &str = "ghi_";

/// A role binding an invitation offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Offer {
    pub role_id: Uuid,
    pub workspace_id: Option<Uuid>,
    /// When the binding granted from the offer ends; `None` for lasting until revoked. An
    /// offer whose end has passed when the invitation is accepted grants nothing.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Offer {
    /// Whether the offer still grants anything at `now`.
    fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| end > now)
    }
}

/// Sorts offers and drops exact repeats; the same role at the same scope with two different
/// ends is a BAD_USER_INPUT (which end was meant is not ours to guess).
pub(crate) fn normalize_offers(mut offers: Vec<Offer>) -> DomainResult<Vec<Offer>> {
    if offers.len() > MAX_OFFERS {
        return Err(DomainError::bad_input(
            "roleBindings",
            format!("at most {MAX_OFFERS} role bindings can be offered at once"),
        ));
    }
    offers.sort();
    offers.dedup();
    if offers
        .windows(2)
        .any(|w| (w[0].role_id, w[0].workspace_id) == (w[1].role_id, w[1].workspace_id))
    {
        return Err(DomainError::bad_input(
            "roleBindings",
            "the same role is offered twice at the same scope with different ends",
        ));
    }
    Ok(offers)
}

/// Lifecycle states as stored; EXPIRED is also derived from `expires_at` when reading.
pub const PENDING: &str = "PENDING";

/// The status a reader sees: a pending invitation past its expiry reads EXPIRED.
pub fn effective_status(invitation: &invitations::Model, now: DateTime<Utc>) -> &str {
    if invitation.status == PENDING && invitation.expires_at <= now {
        "EXPIRED"
    } else {
        &invitation.status
    }
}

/// The link that accepts an invitation.
pub fn accept_url(app: &App, token: &str) -> String {
    format!("{}/invitations/accept?token={token}", app.settings.public_url)
}

/// Most role bindings one invitation or service account may be created with.
pub const MAX_OFFERS: usize = 20;

/// Checks that the actor may offer every binding (invariant 2, as for a grant).
pub(crate) async fn check_offers<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    actor: &MemberAccess,
    organization_id: Uuid,
    offers: &[Offer],
) -> DomainResult<()> {
    if offers.len() > MAX_OFFERS {
        return Err(DomainError::bad_input(
            "roleBindings",
            format!("at most {MAX_OFFERS} role bindings can be offered at once"),
        ));
    }
    for offer in offers {
        let role = bindings::resolve_role(conn, organization_id, offer.role_id).await?;
        if let Some(workspace_id) = offer.workspace_id {
            let workspace = workspaces::Entity::find_by_id(workspace_id).one(conn).await?;
            if workspace.is_none_or(|w| w.organization_id != organization_id) {
                return Err(DomainError::NotFound("workspace"));
            }
        }
        bindings::check_scope(&role, offer.workspace_id)?;
        bindings::check_end("roleBindings.expiresAt", offer.expires_at, &role, app.now())?;
        let keys = access::role_key_sets(conn, app, &[role.id]).await?;
        bindings::check_may_assign(
            app,
            actor,
            &role,
            &keys.get(&role.id).copied().unwrap_or_default(),
            offer.workspace_id,
            // Accepted, the offer becomes a binding lasting until the offer's end.
            offer.expires_at,
        )?;
    }
    Ok(())
}

async fn queue_mail<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    invitation: &invitations::Model,
    organization: &org_rows::Model,
    inviter: &str,
    token: &str,
    kind: &str,
) -> DomainResult<()> {
    let body = format!(
        "{inviter} invited you to join {org} on Guildhall.\n\nAccept the invitation here (the link works until {expires}):\n{url}\n\nIf you did not expect this, ignore this message.\n",
        org = organization.name,
        expires = invitation.expires_at.format("%Y-%m-%d %H:%M UTC"),
        url = accept_url(app, token),
    );
    mailer::enqueue(
        conn,
        app.now(),
        Outgoing {
            recipient: &invitation.email,
            subject: format!("Join {} on Guildhall", organization.name),
            body,
            kind,
            invitation_id: Some(invitation.id),
            listed: None,
        },
    )
    .await
}

/// A created or renewed invitation with its one-time token.
pub struct Issued {
    pub invitation: invitations::Model,
    pub token: String,
    pub accept_url: String,
}

/// Invites an email address to an organization with the role bindings it will receive.
pub async fn invite(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    email: &str,
    offers: Vec<Offer>,
) -> DomainResult<Issued> {
    let email = Email::parse("email", email)?;
    let offers = normalize_offers(if offers.is_empty() {
        vec![Offer {
            role_id: builtins::role_id("member"),
            workspace_id: None,
            expires_at: None,
        }]
    } else {
        offers
    })?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let actor = member_access(&tx, app, principal, organization.id).await?;
    actor.require(app, "members.invite", None)?;
    check_offers(&tx, app, &actor, organization.id, &offers).await?;
    let existing_user = users::Entity::find()
        .filter(users::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .one(&tx)
        .await?;
    if let Some(user) = &existing_user {
        let member = memberships::Entity::find()
            .filter(memberships::Column::OrganizationId.eq(organization.id))
            .filter(memberships::Column::UserId.eq(user.id))
            .one(&tx)
            .await?;
        if let Some(member) = member {
            return Err(DomainError::Conflict {
                message: "this person is already a member".to_owned(),
                field: Some("email".to_owned()),
                existing: Some(("Membership", member.id)),
            });
        }
    }
    let pending = invitations::Entity::find()
        .filter(invitations::Column::OrganizationId.eq(organization.id))
        .filter(invitations::Column::EmailCanonical.eq(email.canonical().to_owned()))
        .filter(invitations::Column::Status.eq(PENDING))
        .all(&tx)
        .await?;
    for invitation in pending {
        if invitation.expires_at > now {
            return Err(DomainError::Conflict {
                message: format!(
                    "an invitation for this email is already pending (sent {}); resend or revoke it",
                    invitation.created_at.format("%Y-%m-%d %H:%M UTC")
                ),
                field: Some("email".to_owned()),
                existing: Some(("Invitation", invitation.id)),
            });
        }
        invitations::Entity::update_many()
            .col_expr(invitations::Column::Status, Expr::value("EXPIRED"))
            .filter(invitations::Column::Id.eq(invitation.id))
            .exec(&tx)
            .await?;
    }
    limits::ensure_room(&tx, app, organization.id, &organization.plan, Limit::Members, 1).await?;
    let token = secrets::generate(TOKEN_PREFIX);
    let invitation = invitations::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        email: Set(email.display().to_owned()),
        email_canonical: Set(email.canonical().to_owned()),
        token_hash: Set(secrets::digest(&token)),
        status: Set(PENDING.to_owned()),
        expires_at: Set(now + app.settings.invitation_ttl),
        invited_by_user_id: Set(Some(principal.user.id)),
        created_at: Set(now),
        responded_at: Set(None),
        membership_id: Set(None),
    }
    .insert(&tx)
    .await?;
    let rows: Vec<invitation_role_bindings::ActiveModel> = offers
        .iter()
        .map(|o| invitation_role_bindings::ActiveModel {
            id: Set(new_id()),
            invitation_id: Set(invitation.id),
            role_id: Set(o.role_id),
            workspace_id: Set(o.workspace_id),
            expires_at: Set(o.expires_at),
        })
        .collect();
    invitation_role_bindings::Entity::insert_many(rows)
        .exec_without_returning(&tx)
        .await?;
    queue_mail(
        &tx,
        app,
        &invitation,
        &organization,
        &principal.user.name,
        &token,
        "invitation",
    )
    .await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "invitation.create",
            target: Some(("Invitation", invitation.id)),
            details: json!({ "email": invitation.email, "roleIds": offers.iter().map(|o| o.role_id).collect::<Vec<_>>() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Issued {
        accept_url: accept_url(app, &token),
        invitation,
        token,
    })
}

/// An invitation of an organization where the caller holds `members.invite`; NOT_FOUND otherwise.
async fn for_manager<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    invitation_id: Uuid,
) -> DomainResult<(invitations::Model, org_rows::Model, MemberAccess)> {
    let invitation = invitations::Entity::find_by_id(invitation_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("invitation"))?;
    let organization = organizations::lock(conn, invitation.organization_id).await?;
    let actor = access::for_principal(conn, app, principal, organization.id)
        .await?
        .ok_or(DomainError::NotFound("invitation"))?;
    actor.require(app, "members.invite", None)?;
    Ok((invitation, organization, actor))
}

/// Issues a new token and expiry; the old link stops working.
pub async fn resend(app: &App, meta: &RequestMeta, principal: &Principal, invitation_id: Uuid) -> DomainResult<Issued> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let (invitation, organization, actor) = for_manager(&tx, app, principal, invitation_id).await?;
    if !matches!(invitation.status.as_str(), "PENDING" | "EXPIRED") {
        return Err(DomainError::InvitationInvalid);
    }
    // An offer whose end has passed grants nothing on acceptance; only the others are checked.
    let offers = open_offers(&tx, invitation.id, now).await?;
    check_offers(&tx, app, &actor, organization.id, &offers).await?;
    // An expired invitation no longer counts against the member limit; renewing it must fit.
    if effective_status(&invitation, now) != PENDING {
        limits::ensure_room(&tx, app, organization.id, &organization.plan, Limit::Members, 1).await?;
    }
    let token = secrets::generate(TOKEN_PREFIX);
    let mut model: invitations::ActiveModel = invitation.clone().into();
    model.token_hash = Set(secrets::digest(&token));
    model.status = Set(PENDING.to_owned());
    model.expires_at = Set(now + app.settings.invitation_ttl);
    let invitation = model.update(&tx).await?;
    queue_mail(
        &tx,
        app,
        &invitation,
        &organization,
        &principal.user.name,
        &token,
        "invitation_resend",
    )
    .await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "invitation.resend",
            target: Some(("Invitation", invitation.id)),
            details: json!({ "email": invitation.email }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Issued {
        accept_url: accept_url(app, &token),
        invitation,
        token,
    })
}

/// Moves a pending invitation to a final status; of concurrent attempts exactly one succeeds.
async fn finish<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    invitation: &invitations::Model,
    status: &str,
    membership_id: Option<Uuid>,
) -> DomainResult<invitations::Model> {
    let now = app.now();
    let changed = invitations::Entity::update_many()
        .col_expr(invitations::Column::Status, Expr::value(status))
        .col_expr(invitations::Column::RespondedAt, Expr::value(now))
        .col_expr(invitations::Column::MembershipId, Expr::value(membership_id))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(invitations::Column::Status.eq(PENDING))
        .filter(invitations::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    if changed.rows_affected != 1 {
        return Err(DomainError::InvitationInvalid);
    }
    invitations::Entity::find_by_id(invitation.id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("invitation"))
}

/// Withdraws a pending invitation (`members.invite`).
pub async fn revoke(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    invitation_id: Uuid,
) -> DomainResult<invitations::Model> {
    let tx = app.store.begin_write().await?;
    let (invitation, organization, _) = for_manager(&tx, app, principal, invitation_id).await?;
    if effective_status(&invitation, app.now()) != PENDING {
        return Err(DomainError::InvitationInvalid);
    }
    let revoked = finish(&tx, app, &invitation, "REVOKED", None).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "invitation.revoke",
            target: Some(("Invitation", invitation.id)),
            details: json!({ "email": invitation.email }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

fn addressed_to(invitation: &invitations::Model, user: &users::Model) -> bool {
    user.email_canonical.as_deref() == Some(invitation.email_canonical.as_str())
}

/// Declines an invitation addressed to the caller.
pub async fn decline(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    invitation_id: Uuid,
) -> DomainResult<invitations::Model> {
    principal.require_session("declining an invitation")?;
    // Only the address's proved owner speaks for it.
    super::self_service::require_verified(principal, "declining an invitation")?;
    let tx = app.store.begin_write().await?;
    let invitation = invitations::Entity::find_by_id(invitation_id)
        .one(&tx)
        .await?
        .filter(|i| addressed_to(i, &principal.user))
        .ok_or(DomainError::NotFound("invitation"))?;
    organizations::lock(&tx, invitation.organization_id).await?;
    match effective_status(&invitation, app.now()) {
        PENDING => {}
        "EXPIRED" => return Err(DomainError::InvitationExpired),
        _ => return Err(DomainError::InvitationInvalid),
    }
    let declined = finish(&tx, app, &invitation, "DECLINED", None).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(invitation.organization_id),
            actor: actor_of(principal),
            action: "invitation.decline",
            target: Some(("Invitation", invitation.id)),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(declined)
}

async fn offers_of<C: ConnectionTrait>(conn: &C, invitation_id: Uuid) -> DomainResult<Vec<Offer>> {
    Ok(invitation_role_bindings::Entity::find()
        .filter(invitation_role_bindings::Column::InvitationId.eq(invitation_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|b| Offer {
            role_id: b.role_id,
            workspace_id: b.workspace_id,
            expires_at: b.expires_at,
        })
        .collect())
}

/// The offers of an invitation that still grant something at `now`.
async fn open_offers<C: ConnectionTrait>(
    conn: &C,
    invitation_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Vec<Offer>> {
    let mut offers = offers_of(conn, invitation_id).await?;
    offers.retain(|o| o.open_at(now));
    Ok(offers)
}

/// The pending invitation behind a token: INVITATION_INVALID when unknown, used, revoked or
/// declined; INVITATION_EXPIRED when past its expiry.
async fn by_token<C: ConnectionTrait>(conn: &C, app: &App, token: &str) -> DomainResult<invitations::Model> {
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(secrets::digest(token.trim())))
        .one(conn)
        .await?
        .ok_or(DomainError::InvitationInvalid)?;
    match effective_status(&invitation, app.now()) {
        PENDING => Ok(invitation),
        "EXPIRED" => Err(DomainError::InvitationExpired),
        _ => Err(DomainError::InvitationInvalid),
    }
}

/// Accepts inside the caller's transaction: membership plus the offered bindings, once.
async fn accept_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    user: &users::Model,
    token: &str,
) -> DomainResult<memberships::Model> {
    let invitation = by_token(conn, app, token).await?;
    let organization = organizations::lock(conn, invitation.organization_id).await?;
    if user.kind != "HUMAN" {
        return Err(DomainError::Forbidden {
            message: "service accounts cannot accept invitations".to_owned(),
            key: None,
        });
    }
    if !addressed_to(&invitation, user) {
        return Err(DomainError::Forbidden {
            message: "this invitation was sent to another email address".to_owned(),
            key: None,
        });
    }
    // The inviter must still be able to grant what they offered (what has not ended yet).
    let offers = open_offers(conn, invitation.id, app.now()).await?;
    let inviter = match invitation.invited_by_user_id {
        Some(id) => access::load(conn, app, id, organization.id).await?,
        None => None,
    };
    // Held back by the organization's two-factor requirement, the inviter grants nothing
    // (judged by their account: a provider's sign-in is not known here).
    let inviter = match inviter {
        Some(inviter) if inviter.organization_requires_two_factor => {
            let user = users::Entity::find_by_id(inviter.membership.user_id).one(conn).await?;
            let external = match &user {
                Some(u) => super::identity::has_external_identity(conn, u.id).await?,
                None => false,
            };
            let held_back = user.is_none_or(|u| u.kind != "SERVICE" && u.totp_enabled_at.is_none() && !external);
            (!held_back).then_some(inviter)
        }
        other => other,
    };
    let Some(inviter) = inviter else {
        return Err(DomainError::Forbidden {
            message: "the person who sent this invitation can no longer grant its roles; ask for a new one".to_owned(),
            key: None,
        });
    };
    check_offers(conn, app, &inviter, organization.id, &offers).await?;
    // Claim the invitation first: of concurrent acceptances only one gets past this line.
    finish(conn, app, &invitation, "ACCEPTED", None).await?;
    let membership = members::add_member_in(conn, app, organization.id, user.id, true).await?;
    invitations::Entity::update_many()
        .col_expr(invitations::Column::MembershipId, Expr::value(membership.id))
        .filter(invitations::Column::Id.eq(invitation.id))
        .exec(conn)
        .await?;
    for offer in offers {
        let role = bindings::resolve_role(conn, organization.id, offer.role_id).await?;
        let target = Target {
            organization: organization.clone(),
            membership: membership.clone(),
            role,
            workspace_id: offer.workspace_id,
        };
        match bindings::bind(
            conn,
            app,
            &target,
            invitation.invited_by_user_id,
            &bindings::Terms {
                expires_at: offer.expires_at,
                reason: None,
                recovery: false,
            },
        )
        .await
        {
            // An offered role covered by another offered role adds nothing.
            Ok(_) | Err(DomainError::Conflict { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: super::audit::Actor {
                user_id: Some(user.id),
                token_id: None,
            },
            action: "invitation.accept",
            target: Some(("Invitation", invitation.id)),
            details: json!({ "membershipId": membership.id }),
        },
    )
    .await?;
    Ok(membership)
}

/// Accepts an invitation as the signed-in user, whose email must be the invited one.
pub async fn accept(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    token: &str,
) -> DomainResult<memberships::Model> {
    principal.require_session("accepting an invitation")?;
    // An address nobody proved could be a squatter's: the invitation waits for the real owner.
    super::self_service::require_verified(principal, "accepting an invitation")?;
    let tx = app.store.begin_write().await?;
    let membership = accept_in(&tx, app, meta, &principal.user, token).await?;
    tx.commit().await?;
    Ok(membership)
}

/// Creates an account with the invited email and accepts, in one transaction.
pub async fn accept_with_sign_up(
    app: &App,
    meta: &RequestMeta,
    token: &str,
    name: &str,
    password: &str,
) -> DomainResult<(Credentials, memberships::Model)> {
    let invitation = by_token(&app.store.conn, app, token).await?;
    accounts::take_sign_up_attempt(app, meta).await?;
    let prepared = accounts::prepare_sign_up(
        app,
        SignUp {
            email: invitation.email.clone(),
            password: password.to_owned(),
            name: name.to_owned(),
        },
    )
    .await?;
    let tx = app.store.begin_write().await?;
    let credentials = accounts::sign_up_in(&tx, app, meta, prepared).await?;
    let membership = accept_in(&tx, app, meta, &credentials.user, token).await?;
    tx.commit().await?;
    Ok((credentials, membership))
}

/// Pending, unexpired invitations addressed to a user.
pub async fn pending_for(app: &App, user: &users::Model) -> DomainResult<Vec<invitations::Model>> {
    let Some(email) = &user.email_canonical else {
        return Ok(Vec::new());
    };
    Ok(invitations::Entity::find()
        .filter(invitations::Column::EmailCanonical.eq(email.clone()))
        .filter(invitations::Column::Status.eq(PENDING))
        .filter(invitations::Column::ExpiresAt.gt(app.now()))
        .order_by_asc(invitations::Column::Id)
        .all(&app.store.conn)
        .await?)
}

fn status_filter(
    query: sea_orm::Select<invitations::Entity>,
    status: Option<&str>,
    now: DateTime<Utc>,
) -> sea_orm::Select<invitations::Entity> {
    use sea_orm::Condition;
    match status {
        None => query,
        Some("PENDING") => query
            .filter(invitations::Column::Status.eq(PENDING))
            .filter(invitations::Column::ExpiresAt.gt(now)),
        Some("EXPIRED") => query.filter(
            Condition::any().add(invitations::Column::Status.eq("EXPIRED")).add(
                Condition::all()
                    .add(invitations::Column::Status.eq(PENDING))
                    .add(invitations::Column::ExpiresAt.lte(now)),
            ),
        ),
        Some(other) => query.filter(invitations::Column::Status.eq(other)),
    }
}

/// A page of an organization's invitations, newest last, optionally of one status.
pub async fn page(
    app: &App,
    organization_id: Uuid,
    status: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<invitations::Model>> {
    let mut query = invitations::Entity::find()
        .filter(invitations::Column::OrganizationId.eq(organization_id))
        .order_by_asc(invitations::Column::Id)
        .limit(page.first + 1);
    query = status_filter(query, status, app.now());
    if let Some(after) = page.after {
        query = query.filter(invitations::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(|i| (i.id, i)).collect(),
        page.first,
    ))
}

pub async fn count(app: &App, organization_id: Uuid, status: Option<&str>) -> DomainResult<u64> {
    let query = invitations::Entity::find().filter(invitations::Column::OrganizationId.eq(organization_id));
    Ok(status_filter(query, status, app.now()).count(&app.store.conn).await?)
}

/// An invitation by id, whichever organization it belongs to.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<invitations::Model>> {
    Ok(invitations::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// The offered bindings of an invitation.
pub async fn offers(app: &App, invitation_id: Uuid) -> DomainResult<Vec<Offer>> {
    offers_of(&app.store.conn, invitation_id).await
}
