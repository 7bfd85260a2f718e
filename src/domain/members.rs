//! Memberships: joining an organization and listing its members.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use serde_json::json;

use crate::store::entities::{memberships, role_bindings, users};

use super::access::{self, MemberAccess};
use super::audit::{self, Event};
use super::organizations::{actor_of, member_access};
use super::{Principal, RequestMeta, bindings, builtins};

use super::error::{DomainError, DomainResult, is_unique_violation};
use super::limits::{self, Limit};
use super::page::{Page, PageRequest};
use super::{App, new_id, organizations};

/// Who may see a user: the user themself, and members of an organization the user belongs to
/// (through a token confined to one organization, only people of that one). Of `users`, the
/// ones `viewer` may see, in two statements whatever their number. Every field that returns a
/// `User` applies it: a former member who granted a role or sent an invitation is no longer the
/// organization's to show.
pub async fn visible_users(
    app: &App,
    viewer: &Principal,
    users: &[Uuid],
) -> DomainResult<std::collections::HashSet<Uuid>> {
    let mut visible: std::collections::HashSet<Uuid> = users.iter().copied().filter(|u| *u == viewer.user.id).collect();
    let others: Vec<Uuid> = users.iter().copied().filter(|u| *u != viewer.user.id).collect();
    if others.is_empty() {
        return Ok(visible);
    }
    let conn = &app.store.conn;
    let mut shared: Vec<Uuid> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::OrganizationId)
        .filter(memberships::Column::UserId.eq(viewer.user.id))
        .into_tuple()
        .all(conn)
        .await?;
    if let Some(only) = organizations::token_organization(viewer) {
        shared.retain(|o| *o == only);
    }
    if shared.is_empty() {
        return Ok(visible);
    }
    let seen: Vec<Uuid> = memberships::Entity::find()
        .select_only()
        .column(memberships::Column::UserId)
        .distinct()
        .filter(memberships::Column::UserId.is_in(others))
        .filter(memberships::Column::OrganizationId.is_in(shared))
        .into_tuple()
        .all(conn)
        .await?;
    visible.extend(seen);
    Ok(visible)
}

/// Makes a user a member (with no role yet) after checking the plan's member limit. Used by
/// invitation acceptance and service accounts; the caller owns the transaction.
pub async fn add_member_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    user_id: Uuid,
    already_counted: bool,
) -> DomainResult<memberships::Model> {
    let organization = organizations::lock(conn, organization_id).await?;
    if !already_counted {
        limits::ensure_room(conn, app, organization.id, &organization.plan, Limit::Members, 1).await?;
    }
    memberships::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization_id),
        user_id: Set(user_id),
        created_at: Set(app.now()),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            DomainError::conflict(None, "the user is already a member of this organization")
        } else {
            e.into()
        }
    })
}

/// Adds a member in its own transaction.
pub async fn add_member(app: &App, organization_id: Uuid, user_id: Uuid) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let membership = add_member_in(&tx, app, organization_id, user_id, false).await?;
    tx.commit().await?;
    Ok(membership)
}

/// Filters of the member list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberFilter {
    /// Members holding this role (at any scope, themselves or through a team).
    pub role_id: Option<Uuid>,
    /// Members holding a role inside this workspace (themselves or through a team).
    pub workspace_id: Option<Uuid>,
    /// Only members with (true) or without (false) any role, their own or a team's.
    pub unassigned: Option<bool>,
    /// Members of this team.
    pub team_id: Option<Uuid>,
    /// Case-insensitive text in the member's name or email.
    pub query: Option<String>,
}

/// Members matching the filter; role conditions look at bindings in force at `now` only, held
/// by the member or through one of their teams.
fn filtered(
    organization_id: Uuid,
    filter: &MemberFilter,
    now: chrono::DateTime<chrono::Utc>,
) -> sea_orm::Select<memberships::Entity> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
    let mut select = memberships::Entity::find().filter(memberships::Column::OrganizationId.eq(organization_id));
    use crate::store::entities::{team_members, team_role_bindings};
    // Holding a binding that matches: one's own, or one of a team one is in.
    let holding = |own: sea_orm::Condition, team: sea_orm::Condition| {
        let mut holding = Query::select()
            .column(role_bindings::Column::MembershipId)
            .from(role_bindings::Entity)
            .cond_where(own)
            .cond_where(super::bindings::in_force_at(now))
            .to_owned();
        // One subquery (a union), planned as one semi-join.
        holding.union(
            sea_orm::sea_query::UnionType::All,
            super::teams::members_of_teams_binding(team.add(super::teams::in_force_at(now))),
        );
        sea_orm::Condition::all().add(memberships::Column::Id.in_subquery(holding))
    };
    let all = || sea_orm::Condition::all();
    if let Some(role_id) = filter.role_id {
        select = select.filter(holding(
            all().add(role_bindings::Column::RoleId.eq(role_id)),
            all().add(team_role_bindings::Column::RoleId.eq(role_id)),
        ));
    }
    if let Some(workspace_id) = filter.workspace_id {
        select = select.filter(holding(
            all().add(role_bindings::Column::WorkspaceId.eq(workspace_id)),
            all().add(team_role_bindings::Column::WorkspaceId.eq(workspace_id)),
        ));
    }
    match filter.unassigned {
        Some(true) => {
            select = select.filter(holding(all(), all()).not());
        }
        Some(false) => {
            select = select.filter(holding(all(), all()));
        }
        None => {}
    }
    if let Some(team_id) = filter.team_id {
        select = select.filter(
            memberships::Column::Id.in_subquery(
                Query::select()
                    .column(team_members::Column::MembershipId)
                    .from(team_members::Entity)
                    .and_where(Expr::col(team_members::Column::TeamId).eq(team_id))
                    .to_owned(),
            ),
        );
    }
    if let Some(text) = filter.query.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let escaped: String = text
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let matching = Query::select()
            .column(users::Column::Id)
            .from(users::Entity)
            .cond_where(
                sea_orm::Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(users::Column::Name)))
                            .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
                    )
                    .add(
                        Expr::col(users::Column::EmailCanonical)
                            .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
                    ),
            )
            .to_owned();
        select = select.filter(memberships::Column::UserId.in_subquery(matching));
    }
    select
}

/// A page of an organization's members in the order they joined (keyset on the time-ordered
/// membership id, so page 200 costs what page 1 costs).
pub async fn page(
    app: &App,
    organization_id: Uuid,
    filter: &MemberFilter,
    page: PageRequest,
) -> DomainResult<Page<memberships::Model>> {
    let mut query = filtered(organization_id, filter, app.now())
        .order_by_asc(memberships::Column::Id)
        .limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(|m| (m.id, m)).collect(),
        page.first,
    ))
}

pub async fn count(app: &App, organization_id: Uuid, filter: &MemberFilter) -> DomainResult<u64> {
    Ok(filtered(organization_id, filter, app.now())
        .count(&app.store.conn)
        .await?)
}

/// A membership by id, whichever organization it is in.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<memberships::Model>> {
    Ok(memberships::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// Invariant 3: the actor must hold every key the target holds, organization-wide and in every
/// workspace where the target has a binding.
pub(crate) fn ensure_covers(app: &App, actor: &MemberAccess, target: &MemberAccess) -> DomainResult<()> {
    let mut scopes: Vec<Option<Uuid>> = vec![None];
    scopes.extend(target.bindings.iter().filter_map(|b| b.binding.workspace_id).map(Some));
    for scope in scopes {
        if let Some(missing) = crate::authz::first_missing(&actor.keys_at(app, scope), &target.keys_at(app, scope)) {
            let key = app.catalog.key(missing).id.clone();
            return Err(actor.deny(DomainError::Forbidden {
                message: format!("the member holds `{key}`, which you do not"),
                key: Some(key),
            }));
        }
    }
    Ok(())
}

async fn delete_membership<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    target: &MemberAccess,
    action: &str,
) -> DomainResult<()> {
    // Team bindings stay with the team; only the member's own can hold `owner`.
    let removing: Vec<_> = target.own_bindings().cloned().collect();
    bindings::ensure_min_holders(conn, app, target.membership.organization_id, &removing).await?;
    memberships::Entity::delete_by_id(target.membership.id)
        .exec(conn)
        .await?;
    // A service account exists for its organization only: it goes with its membership.
    if let Some(user) = users::Entity::find_by_id(target.membership.user_id).one(conn).await?
        && user.kind == "SERVICE"
        && user.service_organization_id == Some(target.membership.organization_id)
    {
        users::Entity::delete_by_id(user.id).exec(conn).await?;
    }
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(target.membership.organization_id),
            actor: actor_of(principal),
            action,
            target: Some(("Membership", target.membership.id)),
            details: json!({ "userId": target.membership.user_id }),
        },
    )
    .await
}

/// Removes a member (`members.remove`, holding every key they hold; owners only by owners;
/// never the last owner). Their access ends with this transaction.
pub async fn remove(app: &App, meta: &RequestMeta, principal: &Principal, membership_id: Uuid) -> DomainResult<Uuid> {
    let tx = app.store.begin_write().await?;
    let membership = memberships::Entity::find_by_id(membership_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    let organization = organizations::lock(&tx, membership.organization_id).await?;
    let actor = access::for_principal(&tx, app, principal, organization.id)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    actor.require(app, "members.remove", None)?;
    let target = access::load(&tx, app, membership.user_id, organization.id)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    let owner = builtins::role_id("owner");
    if target.holds_role(app, owner) && !actor.holds_role(app, owner) {
        return Err(DomainError::Forbidden {
            message: "only owners may remove an owner".to_owned(),
            key: None,
        });
    }
    ensure_covers(app, &actor, &target)?;
    delete_membership(&tx, app, meta, principal, &target, "member.remove").await?;
    tx.commit().await?;
    Ok(membership.organization_id)
}

/// Leaves an organization; the last owner cannot.
pub async fn leave(app: &App, meta: &RequestMeta, principal: &Principal, organization_id: Uuid) -> DomainResult<()> {
    principal.require_session("leaving an organization")?;
    let tx = app.store.begin_write().await?;
    organizations::lock(&tx, organization_id).await?;
    let me = member_access(&tx, app, principal, organization_id).await?;
    delete_membership(&tx, app, meta, principal, &me, "member.leave").await?;
    tx.commit().await?;
    Ok(())
}

/// Makes another member an owner (owner only, `organization.transfer`); with `step_down` the
/// caller's owner binding goes in the same transaction.
pub async fn transfer_ownership(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    to_membership_id: Uuid,
    step_down: bool,
) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let me = member_access(&tx, app, principal, organization.id).await?;
    me.require(app, "organization.transfer", None)?;
    let owner_id = builtins::role_id("owner");
    if !me.holds_role(app, owner_id) {
        return Err(DomainError::forbidden_key("organization.transfer"));
    }
    let target = memberships::Entity::find_by_id(to_membership_id)
        .one(&tx)
        .await?
        .filter(|m| m.organization_id == organization.id)
        .ok_or(DomainError::NotFound("membership"))?;
    if target.id == me.membership.id {
        return Err(DomainError::bad_input(
            "toMembershipId",
            "you already own this organization",
        ));
    }
    let target_user = users::Entity::find_by_id(target.user_id).one(&tx).await?;
    if target_user.is_some_and(|u| u.kind == "SERVICE") {
        return Err(DomainError::bad_input(
            "toMembershipId",
            "a service account cannot own an organization",
        ));
    }
    if step_down {
        let mine: Vec<role_bindings::Model> = role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.eq(me.membership.id))
            .filter(role_bindings::Column::RoleId.eq(owner_id))
            .filter(role_bindings::Column::WorkspaceId.is_null())
            .all(&tx)
            .await?;
        // Stepping down in favour of someone already an owner leaves one owner fewer.
        let target_is_owner = access::load(&tx, app, target.user_id, organization.id)
            .await?
            .is_some_and(|a| a.holds_role(app, owner_id));
        if target_is_owner {
            bindings::ensure_min_holders(&tx, app, organization.id, &mine).await?;
        }
        role_bindings::Entity::delete_many()
            .filter(role_bindings::Column::MembershipId.eq(me.membership.id))
            .filter(role_bindings::Column::RoleId.eq(owner_id))
            .filter(role_bindings::Column::WorkspaceId.is_null())
            .exec(&tx)
            .await?;
    }
    let role = bindings::resolve_role(&tx, organization.id, owner_id).await?;
    let already_owner = access::load(&tx, app, target.user_id, organization.id)
        .await?
        .is_some_and(|a| a.holds_role(app, owner_id));
    if already_owner && !step_down {
        return Err(DomainError::conflict(
            Some("toMembershipId"),
            "this member is already an owner",
        ));
    }
    if !already_owner {
        bindings::bind(
            &tx,
            app,
            &bindings::Target {
                organization: organization.clone(),
                membership: target.clone(),
                role,
                workspace_id: None,
            },
            Some(principal.user.id),
            &bindings::Terms::default(),
        )
        .await?;
    }
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "organization.transfer",
            target: Some(("Membership", target.id)),
            details: json!({ "stepDown": step_down }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(target)
}
