//! Granting and revoking roles (invariants 1, 2, 6 and 7), each decided inside the transaction
//! that writes it, with the organization locked.
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::authz::{self, GrantedBy, KeySet, RoleScope};
use crate::store::entities::{memberships, organizations as org_rows, role_bindings, roles, workspaces};

use super::access::{self, MemberAccess};
use super::audit::{self, Event};
use super::error::{DomainError, DomainResult};
use super::limits::{self, Limit};
use super::organizations::{self, actor_of};
use super::{App, Principal, RequestMeta, new_id};
use super::{builtins, grant_rule};

/// The scope key stored with a binding: "org", or the workspace id.
pub fn scope_key(workspace_id: Option<Uuid>) -> String {
    workspace_id.map(|w| w.to_string()).unwrap_or_else(|| "org".to_owned())
}

/// What a grant or revoke acts on, resolved and checked for belonging to one organization.
pub(crate) struct Target {
    pub organization: org_rows::Model,
    pub membership: memberships::Model,
    pub role: roles::Model,
    pub workspace_id: Option<Uuid>,
}

/// Resolves membership, role and workspace; all must belong to the membership's organization,
/// which the actor must be a member of (NOT_FOUND otherwise).
pub(crate) async fn resolve<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    membership_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
) -> DomainResult<(Target, MemberAccess)> {
    let membership = memberships::Entity::find_by_id(membership_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    let organization = organizations::lock(conn, membership.organization_id).await?;
    let actor = access::for_principal(conn, app, principal, organization.id)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    let role = resolve_role(conn, organization.id, role_id).await?;
    if let Some(workspace_id) = workspace_id {
        let workspace = workspaces::Entity::find_by_id(workspace_id).one(conn).await?;
        if workspace.is_none_or(|w| w.organization_id != organization.id) {
            return Err(DomainError::NotFound("workspace"));
        }
    }
    Ok((
        Target {
            organization,
            membership,
            role,
            workspace_id,
        },
        actor,
    ))
}

/// A role usable in an organization: built-in, or one of its own custom roles.
pub(crate) async fn resolve_role<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_id: Uuid,
) -> DomainResult<roles::Model> {
    match roles::Entity::find_by_id(role_id).one(conn).await? {
        Some(role) if role.organization_id.is_none() || role.organization_id == Some(organization_id) => Ok(role),
        _ => Err(DomainError::NotFound("role")),
    }
}

/// BAD_USER_INPUT when a role is bound at a scope it does not allow.
pub(crate) fn check_scope(role: &roles::Model, workspace_id: Option<Uuid>) -> DomainResult<()> {
    match (RoleScope::parse(&role.scope), workspace_id) {
        (Some(RoleScope::Organization), Some(_)) => Err(DomainError::bad_input(
            "workspaceId",
            format!("`{}` can only be granted organization-wide", role.name),
        )),
        (Some(RoleScope::Workspace), None) => Err(DomainError::bad_input(
            "workspaceId",
            format!("`{}` can only be granted inside a workspace", role.name),
        )),
        _ => Ok(()),
    }
}

/// Whether a role may only be granted and revoked by owners.
fn owners_only(app: &App, role: &roles::Model) -> bool {
    app.builtins
        .role(&role.id)
        .is_some_and(|i| app.catalog.roles[i].granted_by == GrantedBy::Owners)
}

/// Invariant 2 for one role at one scope: `roles.assign` there, then the grant rule for the
/// role's keys at that scope (every key held; owner-granted keys and roles by owners only).
pub(crate) fn check_may_assign(
    app: &App,
    actor: &MemberAccess,
    role: &roles::Model,
    role_keys: &KeySet,
    workspace_id: Option<Uuid>,
) -> DomainResult<()> {
    actor.require(app, "roles.assign", workspace_id)?;
    let at_scope = authz::role_keys_at(&app.catalog, role_keys, workspace_id.is_some());
    grant_rule::check_gift(app, actor, &at_scope, workspace_id, &format!("`{}`", role.name))?;
    if owners_only(app, role) && !grant_rule::is_owner(app, actor) {
        return Err(actor.deny(DomainError::Forbidden {
            message: format!("only owners may grant or revoke `{}`", role.name),
            key: None,
        }));
    }
    Ok(())
}

/// (role, membership) pairs of an organization's members holding these roles organization-wide,
/// sorted and without repeats, in one statement.
async fn organization_wide_holdings<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
) -> DomainResult<Vec<(Uuid, Uuid)>> {
    let members_of_org = Query::select()
        .column(memberships::Column::Id)
        .from(memberships::Entity)
        .and_where(Expr::col(memberships::Column::OrganizationId).eq(organization_id))
        .to_owned();
    let mut pairs: Vec<(Uuid, Uuid)> = role_bindings::Entity::find()
        .filter(role_bindings::Column::RoleId.is_in(role_ids.to_vec()))
        .filter(role_bindings::Column::WorkspaceId.is_null())
        .filter(role_bindings::Column::MembershipId.in_subquery(members_of_org))
        .all(conn)
        .await?
        .into_iter()
        .map(|b| (b.role_id, b.membership_id))
        .collect();
    pairs.sort();
    pairs.dedup();
    Ok(pairs)
}

/// Members of an organization holding any of these roles organization-wide.
pub async fn holders<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
) -> DomainResult<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = organization_wide_holdings(conn, organization_id, role_ids)
        .await?
        .into_iter()
        .map(|(_, membership)| membership)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// How many members of an organization hold each role organization-wide, in one statement.
pub async fn holder_counts<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, u64>> {
    let mut counts = std::collections::HashMap::new();
    for (role, _) in organization_wide_holdings(conn, organization_id, role_ids).await? {
        *counts.entry(role).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Writes a binding after checking subsumption (invariant 6) and the admin limit (invariant 7).
/// Returns the new binding and the bindings it replaced.
pub(crate) async fn bind<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    target: &Target,
    granted_by: Option<Uuid>,
) -> DomainResult<(role_bindings::Model, Vec<role_bindings::Model>)> {
    check_scope(&target.role, target.workspace_id)?;
    let scope = scope_key(target.workspace_id);
    let existing: Vec<role_bindings::Model> = role_bindings::Entity::find()
        .filter(role_bindings::Column::MembershipId.eq(target.membership.id))
        .filter(role_bindings::Column::ScopeKey.eq(scope.clone()))
        .all(conn)
        .await?;
    let mut role_ids: Vec<Uuid> = existing.iter().map(|b| b.role_id).collect();
    role_ids.push(target.role.id);
    let key_sets = access::role_key_sets(conn, app, &role_ids).await?;
    let in_workspace = target.workspace_id.is_some();
    let at_scope = |id: &Uuid| {
        authz::role_keys_at(
            &app.catalog,
            &key_sets.get(id).copied().unwrap_or_default(),
            in_workspace,
        )
    };
    let new_keys = at_scope(&target.role.id);
    let mut replaced = Vec::new();
    for binding in existing {
        let held = at_scope(&binding.role_id);
        if new_keys.is_subset_of(&held) {
            let name = roles::Entity::find_by_id(binding.role_id)
                .one(conn)
                .await?
                .map(|r| r.name)
                .unwrap_or_default();
            return Err(DomainError::conflict(
                Some("roleId"),
                if binding.role_id == target.role.id {
                    format!("the member already holds `{name}` at this scope")
                } else {
                    format!(
                        "the member already holds `{name}` here, which includes every key of `{}`",
                        target.role.name
                    )
                },
            ));
        }
        if held.is_subset_of(&new_keys) {
            replaced.push(binding);
        }
    }
    if target.workspace_id.is_none() {
        let admin_roles = grant_rule::admin_role_ids(conn, app, target.organization.id).await?;
        if admin_roles.contains(&target.role.id) {
            // Counted here once: the holders just read are the admin limit's use.
            let current = holders(conn, target.organization.id, &admin_roles).await?;
            if !current.contains(&target.membership.id) {
                limits::check_room(app, &target.organization.plan, Limit::Admins, current.len() as u64, 1)?;
            }
        }
    }
    if !replaced.is_empty() {
        role_bindings::Entity::delete_many()
            .filter(role_bindings::Column::Id.is_in(replaced.iter().map(|b| b.id).collect::<Vec<_>>()))
            .exec(conn)
            .await?;
    }
    let binding = role_bindings::ActiveModel {
        id: Set(new_id()),
        membership_id: Set(target.membership.id),
        role_id: Set(target.role.id),
        workspace_id: Set(target.workspace_id),
        scope_key: Set(scope),
        granted_by_user_id: Set(granted_by),
        granted_at: Set(app.now()),
    }
    .insert(conn)
    .await?;
    Ok((binding, replaced))
}

/// Grants a role to a member, organization-wide or in one workspace.
pub async fn grant_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    membership_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let (target, actor) = resolve(&tx, app, principal, membership_id, role_id, workspace_id).await?;
    check_scope(&target.role, workspace_id)?;
    let keys = access::role_key_sets(&tx, app, &[target.role.id]).await?;
    check_may_assign(
        app,
        &actor,
        &target.role,
        &keys.get(&target.role.id).copied().unwrap_or_default(),
        workspace_id,
    )?;
    let (binding, replaced) = bind(&tx, app, &target, Some(principal.user.id)).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(target.organization.id),
            actor: actor_of(principal),
            action: "role.grant",
            target: Some(("Membership", target.membership.id)),
            details: json!({
                "role": target.role.name, "roleId": target.role.id, "workspaceId": workspace_id,
                "bindingId": binding.id, "replacedRoleIds": replaced.iter().map(|b| b.role_id).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(target.membership)
}

/// LAST_OWNER when removing these bindings would leave a role below its minimum holders.
pub(crate) async fn ensure_min_holders<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    removing: &[role_bindings::Model],
) -> DomainResult<()> {
    for role in app.catalog.roles.iter().filter(|r| r.min_holders > 0) {
        let role_id = builtins::role_id(&role.name);
        let removed: Vec<Uuid> = removing
            .iter()
            .filter(|b| b.role_id == role_id && b.workspace_id.is_none())
            .map(|b| b.membership_id)
            .collect();
        if removed.is_empty() {
            continue;
        }
        let remaining = holders(conn, organization_id, &[role_id])
            .await?
            .into_iter()
            .filter(|m| !removed.contains(m))
            .count();
        if remaining < role.min_holders as usize {
            return Err(DomainError::LastOwner(format!(
                "the organization must keep at least {} holder(s) of `{}`",
                role.min_holders, role.name
            )));
        }
    }
    Ok(())
}

/// Revokes a member's role at a scope.
pub async fn revoke_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    membership_id: Uuid,
    role_id: Uuid,
    workspace_id: Option<Uuid>,
) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let (target, actor) = resolve(&tx, app, principal, membership_id, role_id, workspace_id).await?;
    let binding = role_bindings::Entity::find()
        .filter(role_bindings::Column::MembershipId.eq(target.membership.id))
        .filter(role_bindings::Column::RoleId.eq(target.role.id))
        .filter(role_bindings::Column::ScopeKey.eq(scope_key(workspace_id)))
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("role binding"))?;
    let keys = access::role_key_sets(&tx, app, &[target.role.id]).await?;
    check_may_assign(
        app,
        &actor,
        &target.role,
        &keys.get(&target.role.id).copied().unwrap_or_default(),
        workspace_id,
    )?;
    ensure_min_holders(&tx, app, target.organization.id, std::slice::from_ref(&binding)).await?;
    role_bindings::Entity::delete_by_id(binding.id).exec(&tx).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(target.organization.id),
            actor: actor_of(principal),
            action: "role.revoke",
            target: Some(("Membership", target.membership.id)),
            details: json!({ "role": target.role.name, "roleId": target.role.id, "workspaceId": workspace_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(target.membership)
}
