//! "Who can use key K in organization O (inside workspace W), and why?": the reverse of
//! [`authorize`](super::authorize). Every membership, a person's or a service account's, that
//! holds the key there, each with the grants that explain it, by the same rule decisions use:
//! an organization-wide binding of a role whose effective keys hold K, or, inside W, a binding
//! in W of such a role when K is not organization-wide; the member's own binding or one of a
//! team they are in. The teams holding the key are listed too ([`teams`]).
//!
//! The roles that grant K are found once per question from the organization's roles (a
//! handful, whatever its size), and one statement asks whether any team holds one of them; then
//! one statement reads a page of the memberships holding one of them and one more their
//! bindings of those roles (one more their teams', when a team holds one). Counting them is one
//! more, asked for separately.
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::authz::KeyIndex;
use crate::store::entities::{memberships, role_bindings, roles, team_role_bindings, teams};

use super::App;
use super::access;
use super::authorize::{self, GrantSource};
use super::builtins;
use super::error::DomainResult;
use super::page::{Page, PageRequest};

/// A membership holding the key, and how.
#[derive(Clone, Debug)]
pub struct Holder {
    pub membership: memberships::Model,
    /// Every binding (and, within it, every keychain or direct key) that gives the key.
    pub grants: Vec<GrantSource>,
}

/// What is asked: a key at a scope of an organization, with the roles that grant it there and
/// the instant bindings are judged at, found once ([`ask`]) for the page and its count alike.
#[derive(Clone, Debug)]
pub struct Question {
    pub organization_id: Uuid,
    pub key: KeyIndex,
    /// `None`: the organization as a whole.
    pub workspace_id: Option<Uuid>,
    /// The roles usable in the organization (built-in and its own) whose effective keys hold
    /// the key, in id order.
    roles: Vec<Uuid>,
    /// Whether a team of the organization holds one of those roles at the scope: only then do
    /// the statements look through teams (so a question no team answers costs what it did).
    through_teams: bool,
    now: chrono::DateTime<chrono::Utc>,
}

/// Prepares the question: reads which of the organization's roles grant the key (a handful of
/// statements, whatever the organization's size).
pub async fn ask<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    key: KeyIndex,
    workspace_id: Option<Uuid>,
) -> DomainResult<Question> {
    let mut role_ids: Vec<Uuid> = roles::Entity::find()
        .select_only()
        .column(roles::Column::Id)
        .filter(roles::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(conn)
        .await?;
    role_ids.extend(app.catalog.roles.iter().map(|r| builtins::role_id(&r.name)));
    let keys = access::role_key_sets(conn, app, &role_ids).await?;
    let mut granting: Vec<Uuid> = keys
        .into_iter()
        .filter(|(_, keys)| keys.contains(key))
        .map(|(id, _)| id)
        .collect();
    granting.sort();
    let mut question = Question {
        organization_id,
        key,
        workspace_id,
        roles: granting,
        through_teams: false,
        now: app.now(),
    };
    if !question.roles.is_empty() {
        let teams_of_org = sea_orm::sea_query::Query::select()
            .column(teams::Column::Id)
            .from(teams::Entity)
            .and_where(sea_orm::sea_query::ExprTrait::eq(
                sea_orm::sea_query::Expr::col(teams::Column::OrganizationId),
                organization_id,
            ))
            .to_owned();
        question.through_teams = team_role_bindings::Entity::find()
            .filter(team_role_bindings::Column::TeamId.in_subquery(teams_of_org))
            .filter(team_at_scope(app, &question))
            .one(conn)
            .await?
            .is_some();
    }
    Ok(question)
}

/// Bindings in force that apply at the asked scope.
fn at_scope(app: &App, question: &Question) -> Condition {
    let organization_wide = role_bindings::Column::WorkspaceId.is_null();
    let scope = match question.workspace_id {
        Some(workspace) if !app.catalog.key(question.key).organization_wide => Condition::any()
            .add(organization_wide)
            .add(role_bindings::Column::WorkspaceId.eq(workspace)),
        _ => Condition::all().add(organization_wide),
    };
    Condition::all()
        .add(scope)
        .add(super::bindings::in_force_at(question.now))
}

/// [`at_scope`] for team bindings.
fn team_at_scope(app: &App, question: &Question) -> Condition {
    let organization_wide = team_role_bindings::Column::WorkspaceId.is_null();
    let scope = match question.workspace_id {
        Some(workspace) if !app.catalog.key(question.key).organization_wide => Condition::any()
            .add(organization_wide)
            .add(team_role_bindings::Column::WorkspaceId.eq(workspace)),
        _ => Condition::all().add(organization_wide),
    };
    Condition::all()
        .add(scope)
        .add(team_role_bindings::Column::RoleId.is_in(question.roles.clone()))
        .add(super::teams::in_force_at(question.now))
}

/// Whether a binding (a member's own or a team's, shaped alike) applies at the asked scope.
fn applies(app: &App, question: &Question, binding: &role_bindings::Model) -> bool {
    let scope = match binding.workspace_id {
        None => true,
        Some(w) => Some(w) == question.workspace_id && !app.catalog.key(question.key).organization_wide,
    };
    scope && question.roles.binary_search(&binding.role_id).is_ok() && super::bindings::in_force(binding, question.now)
}

/// Memberships of the organization with a binding of one of the granting roles at the scope,
/// their own or one of a team they are in.
fn holders_query(app: &App, question: &Question) -> sea_orm::Select<memberships::Entity> {
    let mut holding = role_bindings::Entity::find()
        .select_only()
        .column(role_bindings::Column::MembershipId)
        .filter(role_bindings::Column::RoleId.is_in(question.roles.clone()))
        .filter(at_scope(app, question))
        .into_query();
    // Through teams only when a team holds a granting role; then one subquery (a union) rather
    // than two joined by OR, so that the database still plans one semi-join.
    if question.through_teams {
        holding.union(
            sea_orm::sea_query::UnionType::All,
            super::teams::members_of_teams_binding(team_at_scope(app, question)),
        );
    }
    memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(question.organization_id))
        .filter(memberships::Column::Id.in_subquery(holding))
}

/// A page of the holders, in membership order.
pub async fn holders<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    question: &Question,
    page: PageRequest,
) -> DomainResult<Page<Holder>> {
    if question.roles.is_empty() || page.first == 0 {
        return Ok(Page::from_rows(Vec::new(), page.first));
    }
    let mut query = holders_query(app, question);
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(memberships::Column::Id)
        .limit(page.first + 1)
        .all(conn)
        .await?;
    let ids: Vec<Uuid> = rows.iter().take(page.first as usize).map(|m| m.id).collect();
    let (mut bindings, through_teams) = if ids.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let own = role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.is_in(ids.clone()))
            .filter(role_bindings::Column::RoleId.is_in(question.roles.clone()))
            .filter(at_scope(app, question))
            .order_by_asc(role_bindings::Column::GrantedAt)
            .order_by_asc(role_bindings::Column::Id)
            .all(conn)
            .await?;
        let through_teams: Vec<(Uuid, role_bindings::Model)> = if question.through_teams {
            super::teams::held_through_teams(conn, &ids)
                .await?
                .into_iter()
                .filter(|(_, binding)| applies(app, question, binding))
                .collect()
        } else {
            Vec::new()
        };
        (own, through_teams)
    };
    // A team's binding is held by each member of the team: its grants are told apart by holder.
    let team_of: std::collections::HashMap<(Uuid, Uuid), Uuid> = through_teams
        .iter()
        .map(|(team, b)| ((b.id, b.membership_id), *team))
        .collect();
    bindings.extend(through_teams.into_iter().map(|(_, b)| b));
    let references: Vec<&role_bindings::Model> = bindings.iter().collect();
    let mut grants = authorize::explain(conn, app, &references, question.key).await?;
    for grant in &mut grants {
        grant.team_id = team_of.get(&(grant.binding.id, grant.binding.membership_id)).copied();
    }
    authorize::attach_keychains(conn, &mut grants).await?;
    let items = rows
        .into_iter()
        .map(|membership| {
            let grants = grants
                .iter()
                .filter(|g| g.binding.membership_id == membership.id)
                .cloned()
                .collect();
            (membership.id, Holder { membership, grants })
        })
        .collect();
    Ok(Page::from_rows(items, page.first))
}

/// How many memberships hold the key at the scope.
pub async fn count<C: ConnectionTrait>(conn: &C, app: &App, question: &Question) -> DomainResult<u64> {
    if question.roles.is_empty() {
        return Ok(0);
    }
    Ok(holders_query(app, question).count(conn).await?)
}

/// A team holding the key, and how.
#[derive(Clone, Debug)]
pub struct TeamHolder {
    pub team: teams::Model,
    /// Every binding of the team (and, within it, every keychain or direct key) that gives the
    /// key; each grant's binding is shaped as held by nobody in particular.
    pub grants: Vec<GrantSource>,
}

/// The teams of the organization whose bindings give the key at the scope, in team order, with
/// their grants (a team's members are among the [`holders`], their grants naming the team). An
/// organization has at most its plan's few teams, so they come in one list: two statements and
/// the roles' definitions.
pub async fn teams<C: ConnectionTrait>(conn: &C, app: &App, question: &Question) -> DomainResult<Vec<TeamHolder>> {
    if !question.through_teams {
        return Ok(Vec::new());
    }
    let team_rows = teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(question.organization_id))
        .order_by_asc(teams::Column::Id)
        .all(conn)
        .await?;
    if team_rows.is_empty() {
        return Ok(Vec::new());
    }
    let rows = team_role_bindings::Entity::find()
        .filter(team_role_bindings::Column::TeamId.is_in(team_rows.iter().map(|t| t.id).collect::<Vec<_>>()))
        .filter(team_at_scope(app, question))
        .order_by_asc(team_role_bindings::Column::GrantedAt)
        .order_by_asc(team_role_bindings::Column::Id)
        .all(conn)
        .await?;
    let shaped: Vec<role_bindings::Model> = rows
        .iter()
        .map(|row| super::teams::as_member_binding(row, Uuid::nil()))
        .collect();
    let references: Vec<&role_bindings::Model> = shaped.iter().collect();
    let mut grants = authorize::explain(conn, app, &references, question.key).await?;
    let team_of: std::collections::HashMap<Uuid, Uuid> = rows.iter().map(|r| (r.id, r.team_id)).collect();
    authorize::name_teams(&mut grants, &team_of);
    authorize::attach_keychains(conn, &mut grants).await?;
    Ok(team_rows
        .into_iter()
        .filter_map(|team| {
            let grants: Vec<GrantSource> = grants.iter().filter(|g| g.team_id == Some(team.id)).cloned().collect();
            (!grants.is_empty()).then_some(TeamHolder { team, grants })
        })
        .collect())
}
