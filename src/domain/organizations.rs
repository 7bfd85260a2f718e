//! Organizations: creation (the creator becomes owner), changes, deletion, and lookups that
//! only ever reveal an organization to its members.
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{memberships, organizations, role_bindings, role_keychains, roles};

use super::access::{self, MemberAccess};
use super::audit::{self, Actor, Event};
use super::builtins;
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::page::{Page, PageRequest};
use super::validate::{Slug, display_name};
use super::{App, Principal, RequestMeta, new_id};

/// Plans an organization can be on; limits per plan live in configuration.
pub const PLANS: &[&str] = &["FREE", "TEAM", "ENTERPRISE"];

fn slug_taken() -> DomainError {
    DomainError::conflict(Some("slug"), "an organization with this slug already exists")
}

/// The audit actor of a principal.
pub fn actor_of(principal: &Principal) -> Actor {
    Actor {
        user_id: Some(principal.user.id),
        token_id: principal.token.map(|t| t.id),
    }
}

fn require_human(principal: &Principal) -> DomainResult<()> {
    if principal.user.kind == "SERVICE" {
        return Err(DomainError::Forbidden {
            message: "service accounts belong to one organization and cannot create others".to_owned(),
            key: None,
        });
    }
    Ok(())
}

pub struct CreateOrganization {
    pub name: String,
    pub slug: String,
}

/// Creates an organization whose only member, the caller, holds `owner`.
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    input: CreateOrganization,
) -> DomainResult<(organizations::Model, memberships::Model)> {
    require_human(principal)?;
    principal.require_session("creating an organization")?;
    super::self_service::require_verified(principal, "creating an organization")?;
    let name = display_name("name", &input.name)?;
    let slug = Slug::parse("slug", &input.slug)?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::ActiveModel {
        id: Set(new_id()),
        slug: Set(slug.into_string()),
        name: Set(name),
        plan: Set("FREE".to_owned()),
        require_two_factor: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken()
        } else {
            e.into()
        }
    })?;
    let membership = memberships::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        user_id: Set(principal.user.id),
        created_at: Set(now),
    }
    .insert(&tx)
    .await?;
    role_bindings::ActiveModel {
        id: Set(new_id()),
        membership_id: Set(membership.id),
        role_id: Set(builtins::role_id("owner")),
        workspace_id: Set(None),
        scope_key: Set("org".to_owned()),
        granted_by_user_id: Set(Some(principal.user.id)),
        granted_at: Set(now),
        expires_at: Set(None),
        reason: Set(None),
    }
    .insert(&tx)
    .await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "organization.create",
            target: Some(("Organization", organization.id)),
            details: json!({ "slug": organization.slug, "name": organization.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((organization, membership))
}

/// The caller's access to an organization, or NOT_FOUND when they are not a member.
pub async fn member_access<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    organization_id: Uuid,
) -> DomainResult<MemberAccess> {
    access::for_principal(conn, app, principal, organization_id)
        .await?
        .ok_or(DomainError::NotFound("organization"))
}

pub struct UpdateOrganization {
    pub organization_id: Uuid,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub plan: Option<String>,
    /// Turns the two-factor requirement on or off (owners only).
    pub require_two_factor: Option<bool>,
}

/// Renames or re-slugs (`organization.update`) or changes plan (`billing.manage`).
pub async fn update(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    input: UpdateOrganization,
) -> DomainResult<organizations::Model> {
    let name = input.name.as_deref().map(|n| display_name("name", n)).transpose()?;
    let slug = input.slug.as_deref().map(|s| Slug::parse("slug", s)).transpose()?;
    if let Some(plan) = &input.plan
        && !PLANS.contains(&plan.as_str())
    {
        return Err(DomainError::bad_input(
            "plan",
            format!("plan must be one of {}", PLANS.join(", ")),
        ));
    }
    let now = app.now();
    let tx = app.store.begin_write().await?;
    // Locked first: the access read below is then the one in force when this commits.
    lock(&tx, input.organization_id).await?;
    let access = member_access(&tx, app, principal, input.organization_id).await?;
    if name.is_some() || slug.is_some() {
        access.require(app, "organization.update", None)?;
    }
    if input.plan.is_some() {
        access.require(app, "billing.manage", None)?;
    }
    if let Some(require) = input.require_two_factor {
        if !super::grant_rule::is_owner(app, &access) {
            return Err(access.deny(DomainError::Forbidden {
                message: "only an owner may change whether two-factor sign-in is required".to_owned(),
                key: None,
            }));
        }
        // Whoever turns it on keeps working: they need a second factor of their own first.
        if require && !principal.has_second_factor() {
            return Err(DomainError::TwoFactorSetupRequired(
                "turn on two-factor sign-in for your own account before requiring it of members".to_owned(),
            ));
        }
    }
    let current = organizations::Entity::find_by_id(input.organization_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("organization"))?;
    let mut changes = serde_json::Map::new();
    let mut model = current.clone().into_active_model();
    if let Some(name) = name.filter(|n| *n != current.name) {
        changes.insert("name".into(), json!({ "from": current.name, "to": name }));
        model.name = Set(name);
    }
    if let Some(slug) = slug.filter(|s| s.as_str() != current.slug) {
        changes.insert("slug".into(), json!({ "from": current.slug, "to": slug.as_str() }));
        model.slug = Set(slug.into_string());
    }
    if let Some(plan) = input.plan.filter(|p| *p != current.plan) {
        changes.insert("plan".into(), json!({ "from": current.plan, "to": plan }));
        model.plan = Set(plan);
    }
    if let Some(require) = input.require_two_factor.filter(|r| *r != current.require_two_factor) {
        changes.insert(
            "requireTwoFactor".into(),
            json!({ "from": current.require_two_factor, "to": require }),
        );
        model.require_two_factor = Set(require);
    }
    if changes.is_empty() {
        return Ok(current);
    }
    model.updated_at = Set(now);
    let updated = model.update(&tx).await.map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken()
        } else {
            e.into()
        }
    })?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(updated.id),
            actor: actor_of(principal),
            action: "organization.update",
            target: Some(("Organization", updated.id)),
            details: serde_json::Value::Object(changes),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes an organization and everything in it. Owner-only; the slug must be typed to confirm.
pub async fn delete(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    confirm_slug: &str,
) -> DomainResult<()> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = lock(&tx, organization_id).await?;
    let access = member_access(&tx, app, principal, organization_id).await?;
    access.require(app, "organization.delete", None)?;
    if organization.slug != confirm_slug {
        return Err(DomainError::bad_input(
            "confirmSlug",
            "type the organization's slug to confirm deletion",
        ));
    }
    // Bindings and keychain links keep a role or keychain in use from vanishing (restricting
    // foreign keys); here all of it goes, so they go first, whatever order cascades run in.
    let members_of_org = Query::select()
        .column(memberships::Column::Id)
        .from(memberships::Entity)
        .and_where(Expr::col(memberships::Column::OrganizationId).eq(organization_id))
        .to_owned();
    role_bindings::Entity::delete_many()
        .filter(role_bindings::Column::MembershipId.in_subquery(members_of_org))
        .exec(&tx)
        .await?;
    let teams_of_org = Query::select()
        .column(crate::store::entities::teams::Column::Id)
        .from(crate::store::entities::teams::Entity)
        .and_where(Expr::col(crate::store::entities::teams::Column::OrganizationId).eq(organization_id))
        .to_owned();
    crate::store::entities::team_role_bindings::Entity::delete_many()
        .filter(crate::store::entities::team_role_bindings::Column::TeamId.in_subquery(teams_of_org))
        .exec(&tx)
        .await?;
    let roles_of_org = Query::select()
        .column(roles::Column::Id)
        .from(roles::Entity)
        .and_where(Expr::col(roles::Column::OrganizationId).eq(organization_id))
        .to_owned();
    role_keychains::Entity::delete_many()
        .filter(role_keychains::Column::RoleId.in_subquery(roles_of_org))
        .exec(&tx)
        .await?;
    organizations::Entity::delete_by_id(organization_id).exec(&tx).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization_id),
            actor: actor_of(principal),
            action: "organization.delete",
            target: Some(("Organization", organization_id)),
            details: json!({ "slug": organization.slug, "name": organization.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the caller's credential may see an organization at all (an API token may be
/// restricted to one).
fn token_allows(principal: &Principal, organization_id: Uuid) -> bool {
    principal
        .token
        .and_then(|t| t.organization_id)
        .is_none_or(|only| only == organization_id)
}

/// An organization by id, only when the caller is a member.
pub async fn find_by_id_for(app: &App, principal: &Principal, id: Uuid) -> DomainResult<Option<organizations::Model>> {
    if !token_allows(principal, id) || !is_member(app, principal.user.id, id).await? {
        return Ok(None);
    }
    Ok(organizations::Entity::find_by_id(id).one(&app.store.conn).await?)
}

async fn is_member(app: &App, user_id: Uuid, organization_id: Uuid) -> DomainResult<bool> {
    Ok(memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .filter(memberships::Column::UserId.eq(user_id))
        .count(&app.store.conn)
        .await?
        > 0)
}

/// The one organization a caller's API token is limited to, if any.
pub fn token_organization(principal: &Principal) -> Option<Uuid> {
    principal.token.and_then(|t| t.organization_id)
}

/// A page of a user's organizations (only `only` when given), in the order they joined.
pub async fn page_of_member(
    app: &App,
    user_id: Uuid,
    only: Option<Uuid>,
    page: PageRequest,
) -> DomainResult<Page<organizations::Model>> {
    let conn = &app.store.conn;
    let mut query = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .order_by_asc(memberships::Column::Id)
        .limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    if let Some(only) = only {
        query = query.filter(memberships::Column::OrganizationId.eq(only));
    }
    let rows = query.find_also_related(organizations::Entity).all(conn).await?;
    let items = rows
        .into_iter()
        .filter_map(|(m, organization)| organization.map(|o| (m.id, o)))
        .collect();
    Ok(Page::from_rows(items, page.first))
}

/// How many organizations a user belongs to (at most `only` when given).
pub async fn count_of_member(app: &App, user_id: Uuid, only: Option<Uuid>) -> DomainResult<u64> {
    let mut query = memberships::Entity::find().filter(memberships::Column::UserId.eq(user_id));
    if let Some(only) = only {
        query = query.filter(memberships::Column::OrganizationId.eq(only));
    }
    Ok(query.count(&app.store.conn).await?)
}

/// Reads the organization inside a write transaction, locking its row on PostgreSQL, so that
/// every change to its members, bindings and definitions is serialised per organization (SQLite
/// writers are already serialised by `BEGIN IMMEDIATE`). Invariants checked after this call
/// cannot be raced.
pub async fn lock<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> DomainResult<organizations::Model> {
    let mut query = organizations::Entity::find_by_id(organization_id);
    if crate::store::lock_for_update(conn) {
        query = query.lock_exclusive();
    }
    query.one(conn).await?.ok_or(DomainError::NotFound("organization"))
}
