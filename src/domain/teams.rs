//! Teams: named groups of an organization's members that hold role bindings as members do,
//! organization-wide or in one workspace. A member's keys are the union of their own bindings'
//! and their teams' ([`super::access`] reads both). Every rule of personal grants applies to
//! team grants, at the moment they reach someone:
//!
//! * binding a role to a team is granting it to every member, now and later: `roles.assign`
//!   and the grant rule for the role's keys, for as long as the binding lasts;
//! * adding a member to a team is granting them each of the team's roles: `teams.manage`, then
//!   the same check for every binding of the team (so nobody joins a team that holds keys the
//!   one adding them lacks, themself included);
//! * taking a member out, revoking a team's role and deleting a team take keys away: the
//!   revoke rule for each binding (a member may always leave a team themself);
//! * ownership stays personal: a role that must keep holders (`owner`) or carries an
//!   owner-only key is never bound to a team, so last-owner protection never counts a team;
//! * the plan's admin limit counts every person who holds an admin-class key organization-wide,
//!   through a team or not.
//!
//! Each change runs in one write transaction with the organization locked, like every other
//! change of bindings, so two admins editing a team while a member is removed cannot interleave.
use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IntoActiveModel,
    JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::authz::KeySet;
use crate::store::entities::{memberships, role_bindings, roles, team_members, team_role_bindings, teams, workspaces};

use super::access::{self, MemberAccess};
use super::audit::{self, Event};
use super::bindings::{self, Terms};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::limits::{self, Limit};
use super::organizations::{self, actor_of, member_access};
use super::page::{Page, PageRequest};
use super::{App, Principal, RequestMeta, grant_rule, new_id, validate};

/// Longest description of a team.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;

/// Most role bindings one team may hold.
pub const MAX_TEAM_BINDINGS: u64 = 50;

/// A team binding as seen from one member of the team.
#[derive(Clone, Debug, FromQueryResult)]
struct HeldThroughTeam {
    holder: Uuid,
    id: Uuid,
    team_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
    scope_key: String,
    granted_by_user_id: Option<Uuid>,
    granted_at: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    reason: Option<String>,
}

/// A team's binding in the shape of a member's binding (same id, same terms), as held by
/// `membership_id`: decisions, previews and explanations treat both alike, and the team it
/// comes through travels beside it.
pub fn as_member_binding(row: &team_role_bindings::Model, membership_id: Uuid) -> role_bindings::Model {
    role_bindings::Model {
        id: row.id,
        membership_id,
        role_id: row.role_id,
        workspace_id: row.workspace_id,
        scope_key: row.scope_key.clone(),
        granted_by_user_id: row.granted_by_user_id,
        granted_at: row.granted_at,
        expires_at: row.expires_at,
        reason: row.reason.clone(),
    }
}

/// Every binding the given memberships hold through their teams, as (team id, binding shaped as
/// the member's), in one statement.
pub async fn held_through_teams<C: ConnectionTrait>(
    conn: &C,
    membership_ids: &[Uuid],
) -> DomainResult<Vec<(Uuid, role_bindings::Model)>> {
    if membership_ids.is_empty() {
        return Ok(Vec::new());
    }
    held_where(
        conn,
        sea_orm::Condition::all().add(team_members::Column::MembershipId.is_in(membership_ids.to_vec())),
    )
    .await
}

/// A binding as read for a member: their own (`team_id` null) or one of a team they are in.
#[derive(Clone, Debug, FromQueryResult)]
struct HeldBinding {
    team_id: Option<Uuid>,
    membership_id: Uuid,
    id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
    scope_key: String,
    granted_by_user_id: Option<Uuid>,
    granted_at: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    reason: Option<String>,
}

/// Every binding the given memberships hold, their own and through their teams, as (team id
/// or `None` for their own, binding shaped as the member's), in one statement: a `UNION ALL`
/// of both, so that reading a member's standing costs what it did before teams.
pub async fn bindings_of_members<C: ConnectionTrait>(
    conn: &C,
    membership_ids: &[Uuid],
) -> DomainResult<Vec<(Option<Uuid>, role_bindings::Model)>> {
    use sea_orm::sea_query::{Alias, UnionType};
    if membership_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rb = role_bindings::Entity;
    let tb = team_role_bindings::Entity;
    let mut own = Query::select();
    own.expr_as(Expr::val(Option::<Uuid>::None), Alias::new("team_id"))
        .expr_as(
            Expr::col((rb, role_bindings::Column::MembershipId)),
            Alias::new("membership_id"),
        );
    for (column, alias) in [
        (role_bindings::Column::Id, "id"),
        (role_bindings::Column::RoleId, "role_id"),
        (role_bindings::Column::WorkspaceId, "workspace_id"),
        (role_bindings::Column::ScopeKey, "scope_key"),
        (role_bindings::Column::GrantedByUserId, "granted_by_user_id"),
        (role_bindings::Column::GrantedAt, "granted_at"),
        (role_bindings::Column::ExpiresAt, "expires_at"),
        (role_bindings::Column::Reason, "reason"),
    ] {
        own.expr_as(Expr::col((rb, column)), Alias::new(alias));
    }
    own.from(rb)
        .and_where(Expr::col((rb, role_bindings::Column::MembershipId)).is_in(membership_ids.to_vec()));
    let mut through_team = Query::select();
    through_team
        .expr_as(
            Expr::col((tb, team_role_bindings::Column::TeamId)),
            Alias::new("team_id"),
        )
        .expr_as(
            Expr::col((team_members::Entity, team_members::Column::MembershipId)),
            Alias::new("membership_id"),
        );
    for (column, alias) in [
        (team_role_bindings::Column::Id, "id"),
        (team_role_bindings::Column::RoleId, "role_id"),
        (team_role_bindings::Column::WorkspaceId, "workspace_id"),
        (team_role_bindings::Column::ScopeKey, "scope_key"),
        (team_role_bindings::Column::GrantedByUserId, "granted_by_user_id"),
        (team_role_bindings::Column::GrantedAt, "granted_at"),
        (team_role_bindings::Column::ExpiresAt, "expires_at"),
        (team_role_bindings::Column::Reason, "reason"),
    ] {
        through_team.expr_as(Expr::col((tb, column)), Alias::new(alias));
    }
    through_team
        .from(tb)
        .inner_join(
            team_members::Entity,
            Expr::col((team_members::Entity, team_members::Column::TeamId))
                .equals((tb, team_role_bindings::Column::TeamId)),
        )
        .and_where(
            Expr::col((team_members::Entity, team_members::Column::MembershipId)).is_in(membership_ids.to_vec()),
        );
    own.union(UnionType::All, through_team);
    let statement = conn.get_database_backend().build(&own);
    let rows = HeldBinding::find_by_statement(statement).all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.team_id,
                role_bindings::Model {
                    id: r.id,
                    membership_id: r.membership_id,
                    role_id: r.role_id,
                    workspace_id: r.workspace_id,
                    scope_key: r.scope_key,
                    granted_by_user_id: r.granted_by_user_id,
                    granted_at: r.granted_at,
                    expires_at: r.expires_at,
                    reason: r.reason,
                },
            )
        })
        .collect())
}

/// Every binding held through a team by the members of an organization, in one statement
/// whatever its size.
pub async fn held_through_teams_in<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
) -> DomainResult<Vec<(Uuid, role_bindings::Model)>> {
    let teams_of_org = Query::select()
        .column(teams::Column::Id)
        .from(teams::Entity)
        .and_where(Expr::col(teams::Column::OrganizationId).eq(organization_id))
        .to_owned();
    held_where(
        conn,
        sea_orm::Condition::all().add(team_role_bindings::Column::TeamId.in_subquery(teams_of_org)),
    )
    .await
}

async fn held_where<C: ConnectionTrait>(
    conn: &C,
    condition: sea_orm::Condition,
) -> DomainResult<Vec<(Uuid, role_bindings::Model)>> {
    let rows = team_role_bindings::Entity::find()
        .join(JoinType::InnerJoin, team_role_bindings::Relation::Members.def())
        .filter(condition)
        .column_as(team_members::Column::MembershipId, "holder")
        .order_by_asc(team_role_bindings::Column::GrantedAt)
        .order_by_asc(team_role_bindings::Column::Id)
        .into_model::<HeldThroughTeam>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.team_id,
                role_bindings::Model {
                    id: r.id,
                    membership_id: r.holder,
                    role_id: r.role_id,
                    workspace_id: r.workspace_id,
                    scope_key: r.scope_key,
                    granted_by_user_id: r.granted_by_user_id,
                    granted_at: r.granted_at,
                    expires_at: r.expires_at,
                    reason: r.reason,
                },
            )
        })
        .collect())
}

/// The subquery of memberships that are in a team holding a binding that matches `condition`
/// (a condition on `team_role_bindings`).
pub fn members_of_teams_binding(condition: sea_orm::Condition) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(team_members::Column::MembershipId)
        .from(team_members::Entity)
        .and_where(
            Expr::col((team_members::Entity, team_members::Column::TeamId)).in_subquery(
                Query::select()
                    .column(team_role_bindings::Column::TeamId)
                    .from(team_role_bindings::Entity)
                    .cond_where(condition)
                    .to_owned(),
            ),
        )
        .to_owned()
}

/// [`bindings::in_force_at`] for team bindings.
pub fn in_force_at(now: chrono::DateTime<chrono::Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(team_role_bindings::Column::ExpiresAt.is_null())
        .add(team_role_bindings::Column::ExpiresAt.gt(now))
}

/// Members of an organization holding any of these roles organization-wide at `now` through a
/// team, in one statement.
pub async fn holders_through_teams<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<Vec<(Uuid, Uuid)>> {
    if role_ids.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(FromQueryResult)]
    struct Pair {
        role_id: Uuid,
        holder: Uuid,
    }
    let teams_of_org = Query::select()
        .column(teams::Column::Id)
        .from(teams::Entity)
        .and_where(Expr::col(teams::Column::OrganizationId).eq(organization_id))
        .to_owned();
    let rows = team_role_bindings::Entity::find()
        .select_only()
        .column(team_role_bindings::Column::RoleId)
        .column_as(team_members::Column::MembershipId, "holder")
        .join(JoinType::InnerJoin, team_role_bindings::Relation::Members.def())
        .filter(team_role_bindings::Column::RoleId.is_in(role_ids.to_vec()))
        .filter(team_role_bindings::Column::WorkspaceId.is_null())
        .filter(team_role_bindings::Column::TeamId.in_subquery(teams_of_org))
        .filter(in_force_at(now))
        .into_model::<Pair>()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|p| (p.role_id, p.holder)).collect())
}

/// Whether a role is held by people only: one the organization must keep holders of (`owner`)
/// or one carrying an owner-only key.
fn personal_only(app: &App, role: &roles::Model, keys: &KeySet) -> bool {
    role.min_holders > 0 || !keys.intersection(&app.catalog.owner_only_keys()).is_empty()
}

/// A team with its organization locked and the caller's access there; NOT_FOUND("team") for a
/// team the caller cannot see.
async fn resolve<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    team_id: Uuid,
) -> DomainResult<(teams::Model, crate::store::entities::organizations::Model, MemberAccess)> {
    let team = teams::Entity::find_by_id(team_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("team"))?;
    let organization = organizations::lock(conn, team.organization_id).await?;
    let actor = access::for_principal(conn, app, principal, organization.id)
        .await?
        .ok_or(DomainError::NotFound("team"))?;
    // Re-read under the lock: a team deleted meanwhile is gone.
    let team = teams::Entity::find_by_id(team_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("team"))?;
    Ok((team, organization, actor))
}

fn check_description(description: &str) -> DomainResult<String> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::bad_input(
            "description",
            format!("use at most {MAX_DESCRIPTION_CHARS} characters, no control characters"),
        ));
    }
    Ok(description.to_owned())
}

fn name_taken() -> DomainError {
    DomainError::conflict(Some("name"), "the organization already has a team of that name")
}

/// Creates a team (`teams.manage`), within the plan's team limit.
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    name: &str,
    description: Option<&str>,
) -> DomainResult<teams::Model> {
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let actor = member_access(&tx, app, principal, organization.id).await?;
    let team = create_in(&tx, app, meta, principal, &actor, &organization, name, description).await?;
    tx.commit().await?;
    Ok(team)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn create_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    name: &str,
    description: Option<&str>,
) -> DomainResult<teams::Model> {
    let name = validate::display_name("name", name)?;
    let description = check_description(description.unwrap_or_default())?;
    actor.require(app, "teams.manage", None)?;
    limits::ensure_room(conn, app, organization.id, &organization.plan, Limit::Teams, 1).await?;
    let now = app.now();
    let team = teams::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        name_canonical: Set(name.to_lowercase()),
        name: Set(name),
        description: Set(description),
        created_by_user_id: Set(Some(principal.user.id)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            name_taken()
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.create",
            target: Some(("Team", team.id)),
            details: json!({ "name": team.name }),
        },
    )
    .await?;
    Ok(team)
}

/// Renames a team or changes its description (`teams.manage`).
pub async fn update(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    team_id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> DomainResult<teams::Model> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    let updated = update_in(
        &tx,
        app,
        meta,
        principal,
        &actor,
        &organization,
        team,
        name,
        description,
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn update_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: teams::Model,
    name: Option<&str>,
    description: Option<&str>,
) -> DomainResult<teams::Model> {
    let name = name.map(|n| validate::display_name("name", n)).transpose()?;
    let description = description.map(check_description).transpose()?;
    actor.require(app, "teams.manage", None)?;
    let mut changes = serde_json::Map::new();
    let mut model = team.clone().into_active_model();
    if let Some(name) = name.filter(|n| *n != team.name) {
        changes.insert("name".into(), json!({ "from": team.name, "to": name }));
        model.name_canonical = Set(name.to_lowercase());
        model.name = Set(name);
    }
    if let Some(description) = description.filter(|d| *d != team.description) {
        changes.insert("description".into(), json!({ "changed": true }));
        model.description = Set(description);
    }
    if changes.is_empty() {
        return Ok(team);
    }
    model.updated_at = Set(app.now());
    let updated = model.update(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            name_taken()
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.update",
            target: Some(("Team", team.id)),
            details: serde_json::Value::Object(changes),
        },
    )
    .await?;
    Ok(updated)
}

/// The team's bindings (in force or not), oldest first.
async fn bindings_of<C: ConnectionTrait>(conn: &C, team_id: Uuid) -> DomainResult<Vec<team_role_bindings::Model>> {
    Ok(team_role_bindings::Entity::find()
        .filter(team_role_bindings::Column::TeamId.eq(team_id))
        .order_by_asc(team_role_bindings::Column::GrantedAt)
        .order_by_asc(team_role_bindings::Column::Id)
        .all(conn)
        .await?)
}

/// The roles of these bindings, with their effective keys.
async fn roles_of<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    bindings: &[team_role_bindings::Model],
) -> DomainResult<(HashMap<Uuid, roles::Model>, HashMap<Uuid, KeySet>)> {
    let ids: Vec<Uuid> = bindings.iter().map(|b| b.role_id).collect();
    let keys = access::role_key_sets(conn, app, &ids).await?;
    let rows = if ids.is_empty() {
        HashMap::new()
    } else {
        roles::Entity::find()
            .filter(roles::Column::Id.is_in(ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect()
    };
    Ok((rows, keys))
}

/// Checks that `actor` may hand each of the team's bindings in force to someone (`until`:
/// for as long as each binding lasts) or take it away (`Some(now)` for every binding).
async fn check_bindings<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    actor: &MemberAccess,
    team_bindings: &[team_role_bindings::Model],
    taking_away: bool,
) -> DomainResult<()> {
    let now = app.now();
    let in_force: Vec<team_role_bindings::Model> = team_bindings
        .iter()
        .filter(|b| b.expires_at.is_none_or(|end| end > now))
        .cloned()
        .collect();
    let (role_rows, keys) = roles_of(conn, app, &in_force).await?;
    for binding in &in_force {
        let Some(role) = role_rows.get(&binding.role_id) else {
            continue;
        };
        let until = if taking_away { Some(now) } else { binding.expires_at };
        bindings::check_may_assign(
            app,
            actor,
            role,
            &keys.get(&role.id).copied().unwrap_or_default(),
            binding.workspace_id,
            until,
        )?;
    }
    Ok(())
}

/// The team's members, as membership ids.
async fn member_ids<C: ConnectionTrait>(conn: &C, team_id: Uuid) -> DomainResult<Vec<Uuid>> {
    Ok(team_members::Entity::find()
        .select_only()
        .column(team_members::Column::MembershipId)
        .filter(team_members::Column::TeamId.eq(team_id))
        .into_tuple()
        .all(conn)
        .await?)
}

/// LIMIT_EXCEEDED when `joining` holding the team's admin-class roles organization-wide would
/// make more admins than the plan allows (people already admins, in any way, count once).
async fn check_admins_joining<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization: &crate::store::entities::organizations::Model,
    admin_binding: bool,
    joining: &[Uuid],
) -> DomainResult<()> {
    if !admin_binding || joining.is_empty() {
        return Ok(());
    }
    let current: BTreeSet<Uuid> = grant_rule::admin_holders(conn, app, organization.id)
        .await?
        .into_iter()
        .collect();
    let new = joining.iter().filter(|m| !current.contains(m)).count() as u64;
    if new > 0 {
        limits::check_room(app, &organization.plan, Limit::Admins, current.len() as u64, new)?;
    }
    Ok(())
}

/// Whether any of the team's bindings in force is an organization-wide one of an admin-class
/// role.
async fn holds_admin_role<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    team_bindings: &[team_role_bindings::Model],
) -> DomainResult<bool> {
    let now = app.now();
    let wide: Vec<Uuid> = team_bindings
        .iter()
        .filter(|b| b.workspace_id.is_none() && b.expires_at.is_none_or(|end| end > now))
        .map(|b| b.role_id)
        .collect();
    if wide.is_empty() {
        return Ok(false);
    }
    let admin_roles = grant_rule::admin_role_ids(conn, app, organization_id).await?;
    Ok(wide.iter().any(|r| admin_roles.contains(r)))
}

/// Deletes a team (`teams.manage`, and the right to take each of its roles away from its
/// members).
pub async fn delete(app: &App, meta: &RequestMeta, principal: &Principal, team_id: Uuid) -> DomainResult<Uuid> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    delete_in(&tx, app, meta, principal, &actor, &organization, &team).await?;
    tx.commit().await?;
    Ok(team.id)
}

pub(crate) async fn delete_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: &teams::Model,
) -> DomainResult<()> {
    actor.require(app, "teams.manage", None)?;
    let team_bindings = bindings_of(conn, team.id).await?;
    check_bindings(conn, app, actor, &team_bindings, true).await?;
    let members = member_ids(conn, team.id).await?;
    teams::Entity::delete_by_id(team.id).exec(conn).await?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.delete",
            target: Some(("Team", team.id)),
            details: json!({
                "name": team.name, "members": members.len(),
                "roleIds": team_bindings.iter().map(|b| b.role_id).collect::<Vec<_>>(),
            }),
        },
    )
    .await
}

/// Adds a member of the team's organization to the team (`teams.manage`, and the right to grant
/// each of the team's roles to them for as long as the team holds it).
pub async fn add_member(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    team_id: Uuid,
    membership_id: Uuid,
) -> DomainResult<(teams::Model, memberships::Model)> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    let membership = memberships::Entity::find_by_id(membership_id)
        .one(&tx)
        .await?
        .filter(|m| m.organization_id == organization.id)
        .ok_or(DomainError::NotFound("membership"))?;
    add_member_in(&tx, app, meta, principal, &actor, &organization, &team, &membership).await?;
    tx.commit().await?;
    Ok((team, membership))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn add_member_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: &teams::Model,
    membership: &memberships::Model,
) -> DomainResult<()> {
    actor.require(app, "teams.manage", None)?;
    let team_bindings = bindings_of(conn, team.id).await?;
    check_bindings(conn, app, actor, &team_bindings, false).await?;
    let already = team_members::Entity::find_by_id((team.id, membership.id))
        .one(conn)
        .await?;
    if already.is_some() {
        return Err(DomainError::conflict(
            Some("membershipId"),
            "the member is already in this team",
        ));
    }
    let admin = holds_admin_role(conn, app, organization.id, &team_bindings).await?;
    check_admins_joining(conn, app, organization, admin, &[membership.id]).await?;
    team_members::ActiveModel {
        team_id: Set(team.id),
        membership_id: Set(membership.id),
        added_by_user_id: Set(Some(principal.user.id)),
        added_at: Set(app.now()),
    }
    .insert(conn)
    .await?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.member.add",
            target: Some(("Membership", membership.id)),
            details: json!({ "teamId": team.id, "team": team.name, "userId": membership.user_id }),
        },
    )
    .await
}

/// Takes a member out of a team: the member themself, or a holder of `teams.manage` with the
/// right to take each of the team's roles away.
pub async fn remove_member(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    team_id: Uuid,
    membership_id: Uuid,
) -> DomainResult<(teams::Model, memberships::Model)> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    let membership = memberships::Entity::find_by_id(membership_id)
        .one(&tx)
        .await?
        .filter(|m| m.organization_id == organization.id)
        .ok_or(DomainError::NotFound("membership"))?;
    remove_member_in(&tx, app, meta, principal, &actor, &organization, &team, &membership).await?;
    tx.commit().await?;
    Ok((team, membership))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn remove_member_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: &teams::Model,
    membership: &memberships::Model,
) -> DomainResult<()> {
    // Leaving only loses keys: nobody needs a right to leave a team.
    if membership.id != actor.membership.id {
        actor.require(app, "teams.manage", None)?;
        let team_bindings = bindings_of(conn, team.id).await?;
        check_bindings(conn, app, actor, &team_bindings, true).await?;
    }
    let removed = team_members::Entity::delete_by_id((team.id, membership.id))
        .exec(conn)
        .await?;
    if removed.rows_affected == 0 {
        return Err(DomainError::NotFound("team member"));
    }
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.member.remove",
            target: Some(("Membership", membership.id)),
            details: json!({ "teamId": team.id, "team": team.name, "userId": membership.user_id }),
        },
    )
    .await
}

/// Binds a role to a team, organization-wide or in one workspace: `roles.assign` and the grant
/// rule as for a personal grant (it reaches every member), never a role held by people only.
/// Subsumption as for members: a binding the team holds that already gives every key for as
/// long is a CONFLICT; bindings the new one covers for as long are replaced.
pub async fn grant_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    team_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
    terms: &Terms,
) -> DomainResult<teams::Model> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    let role = bindings::resolve_role(&tx, organization.id, role_id).await?;
    grant_role_in(
        &tx,
        app,
        meta,
        principal,
        &actor,
        &organization,
        &team,
        &role,
        workspace_id,
        terms,
    )
    .await?;
    tx.commit().await?;
    Ok(team)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn grant_role_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: &teams::Model,
    role: &roles::Model,
    workspace_id: Option<Uuid>,
    terms: &Terms,
) -> DomainResult<()> {
    if let Some(workspace_id) = workspace_id {
        let workspace = workspaces::Entity::find_by_id(workspace_id).one(conn).await?;
        if workspace.is_none_or(|w| w.organization_id != organization.id) {
            return Err(DomainError::NotFound("workspace"));
        }
    }
    bindings::check_scope(role, workspace_id)?;
    let keys = access::role_key_sets(conn, app, &[role.id]).await?;
    let role_keys = keys.get(&role.id).copied().unwrap_or_default();
    if personal_only(app, role, &role_keys) {
        return Err(DomainError::bad_input(
            "roleId",
            format!(
                "`{}` is held by people only, never through a team: ownership stays personal",
                role.name
            ),
        ));
    }
    terms.check(role, app.now())?;
    bindings::check_may_assign(app, actor, role, &role_keys, workspace_id, terms.expires_at)?;
    let existing = bindings_of(conn, team.id).await?;
    let scope = bindings::scope_key(workspace_id);
    let now = app.now();
    let (at_scope, others): (Vec<_>, Vec<_>) = existing.iter().cloned().partition(|b| b.scope_key == scope);
    let (held, ended): (Vec<_>, Vec<_>) = at_scope.into_iter().partition(|b| b.expires_at.is_none_or(|e| e > now));
    if (others.len() + held.len()) as u64 >= MAX_TEAM_BINDINGS {
        return Err(DomainError::LimitExceeded {
            limit: "teamRoleBindings".to_owned(),
            message: format!("a team holds at most {MAX_TEAM_BINDINGS} role bindings"),
        });
    }
    let mut role_ids: Vec<Uuid> = held.iter().map(|b| b.role_id).collect();
    role_ids.push(role.id);
    let key_sets = access::role_key_sets(conn, app, &role_ids).await?;
    let in_workspace = workspace_id.is_some();
    let scoped = |id: &Uuid| {
        crate::authz::role_keys_at(
            &app.catalog,
            &key_sets.get(id).copied().unwrap_or_default(),
            in_workspace,
        )
    };
    let new_keys = scoped(&role.id);
    let mut replaced = ended;
    for binding in held {
        let held_keys = scoped(&binding.role_id);
        if new_keys.is_subset_of(&held_keys) && bindings::lasts_as_long(binding.expires_at, terms.expires_at) {
            return Err(DomainError::conflict(
                Some("roleId"),
                if binding.role_id == role.id {
                    "the team already holds this role at this scope".to_owned()
                } else {
                    format!(
                        "the team already holds a role here that includes every key of `{}`",
                        role.name
                    )
                },
            ));
        }
        if held_keys.is_subset_of(&new_keys) && bindings::lasts_as_long(terms.expires_at, binding.expires_at) {
            replaced.push(binding);
        }
    }
    if workspace_id.is_none() {
        let admin_roles = grant_rule::admin_role_ids(conn, app, organization.id).await?;
        if admin_roles.contains(&role.id) {
            let members = member_ids(conn, team.id).await?;
            check_admins_joining(conn, app, organization, true, &members).await?;
        }
    }
    if !replaced.is_empty() {
        team_role_bindings::Entity::delete_many()
            .filter(team_role_bindings::Column::Id.is_in(replaced.iter().map(|b| b.id).collect::<Vec<_>>()))
            .exec(conn)
            .await?;
    }
    let binding = team_role_bindings::ActiveModel {
        id: Set(new_id()),
        team_id: Set(team.id),
        role_id: Set(role.id),
        workspace_id: Set(workspace_id),
        scope_key: Set(scope),
        granted_by_user_id: Set(Some(principal.user.id)),
        granted_at: Set(now),
        expires_at: Set(terms.expires_at),
        reason: Set(terms.reason.clone()),
    }
    .insert(conn)
    .await?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.role.grant",
            target: Some(("Team", team.id)),
            details: json!({
                "role": role.name, "roleId": role.id, "workspaceId": workspace_id, "bindingId": binding.id,
                "replacedRoleIds": replaced.iter().map(|b| b.role_id).collect::<Vec<_>>(),
                "expiresAt": terms.expires_at, "reason": terms.reason,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Revokes a team's role at a scope (the revoke rule: the role's keys held now).
pub async fn revoke_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    team_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
) -> DomainResult<teams::Model> {
    let tx = app.store.begin_write().await?;
    let (team, organization, actor) = resolve(&tx, app, principal, team_id).await?;
    let role = bindings::resolve_role(&tx, organization.id, role_id).await?;
    revoke_role_in(
        &tx,
        app,
        meta,
        principal,
        &actor,
        &organization,
        &team,
        &role,
        workspace_id,
    )
    .await?;
    tx.commit().await?;
    Ok(team)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn revoke_role_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    actor: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    team: &teams::Model,
    role: &roles::Model,
    workspace_id: Option<Uuid>,
) -> DomainResult<()> {
    let binding = team_role_bindings::Entity::find()
        .filter(team_role_bindings::Column::TeamId.eq(team.id))
        .filter(team_role_bindings::Column::RoleId.eq(role.id))
        .filter(team_role_bindings::Column::ScopeKey.eq(bindings::scope_key(workspace_id)))
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("role binding"))?;
    let keys = access::role_key_sets(conn, app, &[role.id]).await?;
    bindings::check_may_assign(
        app,
        actor,
        role,
        &keys.get(&role.id).copied().unwrap_or_default(),
        workspace_id,
        Some(app.now()),
    )?;
    team_role_bindings::Entity::delete_by_id(binding.id).exec(conn).await?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "team.role.revoke",
            target: Some(("Team", team.id)),
            details: json!({ "role": role.name, "roleId": role.id, "workspaceId": workspace_id }),
        },
    )
    .await?;
    Ok(())
}

/// Removes up to `batch` team bindings that have ended, recording `role.expire` for each (with
/// the team as target), in one short transaction. Returns how many went.
pub async fn expire_due(app: &App, batch: u64) -> DomainResult<usize> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let due = team_role_bindings::Entity::find()
        .filter(team_role_bindings::Column::ExpiresAt.lte(now))
        .order_by_asc(team_role_bindings::Column::ExpiresAt)
        .limit(batch)
        .all(&tx)
        .await?;
    if due.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let organization_of: HashMap<Uuid, Uuid> = teams::Entity::find()
        .filter(teams::Column::Id.is_in(due.iter().map(|b| b.team_id).collect::<Vec<_>>()))
        .all(&tx)
        .await?
        .into_iter()
        .map(|t| (t.id, t.organization_id))
        .collect();
    let role_names: HashMap<Uuid, String> = roles::Entity::find()
        .filter(roles::Column::Id.is_in(due.iter().map(|b| b.role_id).collect::<Vec<_>>()))
        .all(&tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let due = team_role_bindings::Entity::delete_many()
        .filter(team_role_bindings::Column::Id.is_in(due.iter().map(|b| b.id).collect::<Vec<_>>()))
        .filter(team_role_bindings::Column::ExpiresAt.lte(now))
        .exec_with_returning(&tx)
        .await?;
    let meta = RequestMeta {
        request_id: "grant-expiry".to_owned(),
        client_address: None,
        user_agent: None,
    };
    for binding in &due {
        audit::record(
            &tx,
            &meta,
            now,
            Event {
                organization_id: organization_of.get(&binding.team_id).copied(),
                actor: audit::Actor {
                    user_id: None,
                    token_id: None,
                },
                action: "role.expire",
                target: Some(("Team", binding.team_id)),
                details: json!({
                    "role": role_names.get(&binding.role_id), "roleId": binding.role_id,
                    "workspaceId": binding.workspace_id, "bindingId": binding.id,
                    "expiresAt": binding.expires_at, "reason": binding.reason,
                    "grantedBy": binding.granted_by_user_id, "teamId": binding.team_id,
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// A team by id, whichever organization it is in.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<teams::Model>> {
    Ok(teams::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// A page of an organization's teams, oldest first.
pub async fn page(app: &App, organization_id: Uuid, page: PageRequest) -> DomainResult<Page<teams::Model>> {
    let mut query = teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(organization_id))
        .order_by_asc(teams::Column::Id)
        .limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(teams::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(|t| (t.id, t)).collect(),
        page.first,
    ))
}

/// How many teams an organization has.
pub async fn count(app: &App, organization_id: Uuid) -> DomainResult<u64> {
    Ok(teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(organization_id))
        .count(&app.store.conn)
        .await?)
}

/// The teams each of these memberships is in, in team order, in two statements.
pub async fn teams_of_members<C: ConnectionTrait>(
    conn: &C,
    membership_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<teams::Model>>> {
    let mut out: HashMap<Uuid, Vec<teams::Model>> = HashMap::new();
    if membership_ids.is_empty() {
        return Ok(out);
    }
    let links = team_members::Entity::find()
        .filter(team_members::Column::MembershipId.is_in(membership_ids.to_vec()))
        .all(conn)
        .await?;
    if links.is_empty() {
        return Ok(out);
    }
    let mut ids: Vec<Uuid> = links.iter().map(|l| l.team_id).collect();
    ids.sort();
    ids.dedup();
    let rows: HashMap<Uuid, teams::Model> = teams::Entity::find()
        .filter(teams::Column::Id.is_in(ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    for link in links {
        if let Some(team) = rows.get(&link.team_id) {
            out.entry(link.membership_id).or_default().push(team.clone());
        }
    }
    for list in out.values_mut() {
        list.sort_by_key(|t| t.id);
    }
    Ok(out)
}

/// The bindings in force of each of these teams, oldest first, in one statement.
pub async fn bindings_of_teams<C: ConnectionTrait>(
    conn: &C,
    now: chrono::DateTime<chrono::Utc>,
    team_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<team_role_bindings::Model>>> {
    let mut out: HashMap<Uuid, Vec<team_role_bindings::Model>> = HashMap::new();
    if team_ids.is_empty() {
        return Ok(out);
    }
    let rows = team_role_bindings::Entity::find()
        .filter(team_role_bindings::Column::TeamId.is_in(team_ids.to_vec()))
        .filter(in_force_at(now))
        .order_by_asc(team_role_bindings::Column::GrantedAt)
        .order_by_asc(team_role_bindings::Column::Id)
        .all(conn)
        .await?;
    for row in rows {
        out.entry(row.team_id).or_default().push(row);
    }
    Ok(out)
}

/// How many members each of these teams has, in one statement.
pub async fn member_counts<C: ConnectionTrait>(conn: &C, team_ids: &[Uuid]) -> DomainResult<HashMap<Uuid, u64>> {
    let mut out: HashMap<Uuid, u64> = team_ids.iter().map(|id| (*id, 0)).collect();
    if team_ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Uuid, i64)> = team_members::Entity::find()
        .select_only()
        .column(team_members::Column::TeamId)
        .column_as(team_members::Column::MembershipId.count(), "members")
        .filter(team_members::Column::TeamId.is_in(team_ids.to_vec()))
        .group_by(team_members::Column::TeamId)
        .into_tuple()
        .all(conn)
        .await?;
    for (team, members) in rows {
        out.insert(team, members as u64);
    }
    Ok(out)
}
