//! "Who can use key K in organization O (inside workspace W), and why?": the reverse of
//! [`authorize`](super::authorize). Every membership, a person's or a service account's, that
//! holds the key there, each with the grants that explain it, by the same rule decisions use:
//! an organization-wide binding of a role whose effective keys hold K, or, inside W, a binding
//! in W of such a role when K is not organization-wide.
//!
//! The roles that grant K are found once per question from the organization's roles (a
//! handful, whatever its size); then one statement reads a page of the memberships holding one
//! of them and one more their bindings of those roles. Counting them is a third, asked for
//! separately.
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::authz::KeyIndex;
use crate::store::entities::{memberships, role_bindings, roles};

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
    Ok(Question {
        organization_id,
        key,
        workspace_id,
        roles: granting,
        now: app.now(),
    })
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

/// Memberships of the organization with a binding of one of the granting roles at the scope.
fn holders_query(app: &App, question: &Question) -> sea_orm::Select<memberships::Entity> {
    let holding = role_bindings::Entity::find()
        .select_only()
        .column(role_bindings::Column::MembershipId)
        .filter(role_bindings::Column::RoleId.is_in(question.roles.clone()))
        .filter(at_scope(app, question))
        .into_query();
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
    let bindings = if ids.is_empty() {
        Vec::new()
    } else {
        role_bindings::Entity::find()
            .filter(role_bindings::Column::MembershipId.is_in(ids))
            .filter(role_bindings::Column::RoleId.is_in(question.roles.clone()))
            .filter(at_scope(app, question))
            .order_by_asc(role_bindings::Column::GrantedAt)
            .order_by_asc(role_bindings::Column::Id)
            .all(conn)
            .await?
    };
    let references: Vec<&role_bindings::Model> = bindings.iter().collect();
    let mut grants = authorize::explain(conn, app, &references, question.key).await?;
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
