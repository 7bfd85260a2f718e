//! Granting and revoking roles (invariants 1, 2, 6 and 7), each decided inside the transaction
//! that writes it, with the organization locked.
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
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
/// role's keys at that scope (every key held, for at least as long as the binding will last
/// (`until`, `None` for good); owner-granted keys and roles by owners only).
pub(crate) fn check_may_assign(
    app: &App,
    actor: &MemberAccess,
    role: &roles::Model,
    role_keys: &KeySet,
    workspace_id: Option<Uuid>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> DomainResult<()> {
    actor.require(app, "roles.assign", workspace_id)?;
    // The right to grant counts time as the keys do: held only until Friday, it grants nothing
    // lasting past Friday, whatever keys the giver holds for good.
    if let Some(assign) = app.catalog.lookup("roles.assign")
        && !actor.keys_held_until(app, workspace_id, until).contains(assign)
    {
        return Err(actor.deny(DomainError::Forbidden {
            message: format!(
                "you hold `roles.assign` here only for a time: you cannot grant `{}` for longer",
                role.name
            ),
            key: Some("roles.assign".to_owned()),
        }));
    }
    let at_scope = authz::role_keys_at(&app.catalog, role_keys, workspace_id.is_some());
    grant_rule::check_gift(app, actor, &at_scope, workspace_id, &format!("`{}`", role.name), until)?;
    if owners_only(app, role) && !grant_rule::is_owner(app, actor) {
        return Err(actor.deny(DomainError::Forbidden {
            message: format!("only owners may grant or revoke `{}`", role.name),
            key: None,
        }));
    }
    Ok(())
}

/// Who counts as holding a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Through {
    /// Their own bindings only: ownership, which stays personal.
    Own,
    /// Their own bindings and their teams': keys, and the admin limit.
    OwnOrTeam,
}

/// (role, membership) pairs of an organization's members holding these roles organization-wide,
/// sorted and without repeats, in one statement (two when teams count).
async fn organization_wide_holdings<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
    through: Through,
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
        .filter(in_force_at(now))
        .all(conn)
        .await?
        .into_iter()
        .map(|b| (b.role_id, b.membership_id))
        .collect();
    if through == Through::OwnOrTeam {
        pairs.extend(super::teams::holders_through_teams(conn, organization_id, role_ids, now).await?);
    }
    pairs.sort();
    pairs.dedup();
    Ok(pairs)
}

/// Members of an organization holding any of these roles organization-wide at `now` (a grant
/// that has ended counts for nothing, swept or not), `through` their own bindings only or
/// their teams' too.
pub async fn holders<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
    through: Through,
) -> DomainResult<Vec<Uuid>> {
    let mut ids: Vec<Uuid> = organization_wide_holdings(conn, organization_id, role_ids, now, through)
        .await?
        .into_iter()
        .map(|(_, membership)| membership)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// How many members of an organization hold each role organization-wide at `now`, themselves
/// or through a team (each once), in two statements.
pub async fn holder_counts<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    role_ids: &[Uuid],
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<std::collections::HashMap<Uuid, u64>> {
    let mut counts = std::collections::HashMap::new();
    for (role, _) in organization_wide_holdings(conn, organization_id, role_ids, now, Through::OwnOrTeam).await? {
        *counts.entry(role).or_insert(0) += 1;
    }
    Ok(counts)
}

/// How long a binding lasts, and why it was given.
#[derive(Clone, Debug, Default)]
pub struct Terms {
    /// `None`: until revoked.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reason: Option<String>,
    /// A recovery of ownership: the admin limit does not stop an organization from getting
    /// an owner back.
    pub recovery: bool,
}

/// Furthest end of a grant that ends (about ten years).
pub const MAX_GRANT_DAYS: i64 = 3_653;

/// Longest `reason` of a grant.
pub const MAX_REASON_CHARS: usize = 500;

impl Terms {
    /// Checks the terms of a grant of `role` at `now`: an end in the future, never for a role
    /// that must keep holders (ownership is never temporary), a short reason.
    pub fn check(&self, role: &roles::Model, now: chrono::DateTime<chrono::Utc>) -> DomainResult<()> {
        check_end("expiresAt", self.expires_at, role, now)?;
        if let Some(reason) = &self.reason
            && reason.chars().count() > MAX_REASON_CHARS
        {
            return Err(DomainError::bad_input(
                "reason",
                format!("the reason may be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

/// Checks the end of a grant (or of an offer, named by `field`) of `role` at `now`: in the
/// future, at most [`MAX_GRANT_DAYS`] ahead, never for a role that must keep holders (ownership
/// is never temporary).
pub(crate) fn check_end(
    field: &'static str,
    end: Option<chrono::DateTime<chrono::Utc>>,
    role: &roles::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<()> {
    let Some(end) = end else {
        return Ok(());
    };
    if end <= now {
        return Err(DomainError::bad_input(field, format!("{field} must be in the future")));
    }
    if end > now + chrono::Duration::days(MAX_GRANT_DAYS) {
        return Err(DomainError::bad_input(
            field,
            format!("{field} may be at most {MAX_GRANT_DAYS} days ahead; omit it for a grant that lasts"),
        ));
    }
    if role.min_holders > 0 {
        return Err(DomainError::bad_input(
            field,
            format!(
                "`{}` is never granted for a time: the organization must always keep its holders",
                role.name
            ),
        ));
    }
    Ok(())
}

/// Whether a binding ending at `a` lasts at least as long as one ending at `b` (`None`: never ends).
pub(crate) fn lasts_as_long(
    a: Option<chrono::DateTime<chrono::Utc>>,
    b: Option<chrono::DateTime<chrono::Utc>>,
) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a >= b,
    }
}

/// Whether a binding still grants anything at `now`.
pub fn in_force(binding: &role_bindings::Model, now: chrono::DateTime<chrono::Utc>) -> bool {
    binding.expires_at.is_none_or(|end| end > now)
}

/// [`in_force`] as a condition on `role_bindings` rows, for statements.
pub fn in_force_at(now: chrono::DateTime<chrono::Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(role_bindings::Column::ExpiresAt.is_null())
        .add(role_bindings::Column::ExpiresAt.gt(now))
}

/// Writes a binding after checking subsumption (invariant 6) and the admin limit (invariant 7).
/// Returns the new binding and the bindings it replaced. A binding that has ended is replaced
/// by any new one at its scope; a held binding makes the new one redundant only if it grants
/// every key of it for at least as long, and the new one replaces a held one only if it grants
/// all of its keys for at least as long (an expiring grant never takes away a lasting one).
pub(crate) async fn bind<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    target: &Target,
    granted_by: Option<Uuid>,
    terms: &Terms,
) -> DomainResult<(role_bindings::Model, Vec<role_bindings::Model>)> {
    check_scope(&target.role, target.workspace_id)?;
    terms.check(&target.role, app.now())?;
    let scope = scope_key(target.workspace_id);
    let (existing, ended): (Vec<role_bindings::Model>, Vec<role_bindings::Model>) = role_bindings::Entity::find()
        .filter(role_bindings::Column::MembershipId.eq(target.membership.id))
        .filter(role_bindings::Column::ScopeKey.eq(scope.clone()))
        .all(conn)
        .await?
        .into_iter()
        .partition(|b| in_force(b, app.now()));
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
    let mut replaced = ended;
    for binding in existing {
        let held = at_scope(&binding.role_id);
        if new_keys.is_subset_of(&held) && lasts_as_long(binding.expires_at, terms.expires_at) {
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
        if held.is_subset_of(&new_keys) && lasts_as_long(terms.expires_at, binding.expires_at) {
            replaced.push(binding);
        }
    }
    if target.workspace_id.is_none() {
        let admin_roles = grant_rule::admin_role_ids(conn, app, target.organization.id).await?;
        if admin_roles.contains(&target.role.id) && !terms.recovery {
            // Counted here once: the holders just read are the admin limit's use (people who
            // are admins through a team count too).
            let current = holders(
                conn,
                target.organization.id,
                &admin_roles,
                app.now(),
                Through::OwnOrTeam,
            )
            .await?;
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
        expires_at: Set(terms.expires_at),
        reason: Set(terms.reason.clone()),
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
    terms: &Terms,
) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let (target, actor) = resolve(&tx, app, principal, membership_id, role_id, workspace_id).await?;
    check_scope(&target.role, workspace_id)?;
    terms.check(&target.role, app.now())?;
    let keys = access::role_key_sets(&tx, app, &[target.role.id]).await?;
    check_may_assign(
        app,
        &actor,
        &target.role,
        &keys.get(&target.role.id).copied().unwrap_or_default(),
        workspace_id,
        terms.expires_at,
    )?;
    let (binding, replaced) = bind(&tx, app, &target, Some(principal.user.id), terms).await?;
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
                "expiresAt": terms.expires_at, "reason": terms.reason,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(target.membership)
}

/// How many of these memberships are people's (not service accounts').
pub(crate) async fn people_among<C: ConnectionTrait>(conn: &C, membership_ids: &[Uuid]) -> DomainResult<usize> {
    if membership_ids.is_empty() {
        return Ok(0);
    }
    let user_ids: Vec<Uuid> = memberships::Entity::find()
        .filter(memberships::Column::Id.is_in(membership_ids.to_vec()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    use sea_orm::PaginatorTrait;
    Ok(crate::store::entities::users::Entity::find()
        .filter(crate::store::entities::users::Column::Id.is_in(user_ids))
        .filter(crate::store::entities::users::Column::Kind.eq("HUMAN"))
        .count(conn)
        .await? as usize)
}

/// LAST_OWNER when removing these bindings would leave a role below its minimum holders
/// (people only: service accounts do not count).
pub(crate) async fn ensure_min_holders<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    removing: &[role_bindings::Model],
) -> DomainResult<()> {
    let mut plan: Option<String> = None;
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
        let remaining: Vec<Uuid> = holders(conn, organization_id, &[role_id], app.now(), Through::Own)
            .await?
            .into_iter()
            .filter(|m| !removed.contains(m))
            .collect();
        // Only people count: a service account holding `owner` keeps no organization owned.
        let remaining = people_among(conn, &remaining).await?;
        // The plan may ask for more owners than the catalog does.
        let mut minimum = role.min_holders as u64;
        if role.name == "owner" {
            if plan.is_none() {
                plan = Some(
                    org_rows::Entity::find_by_id(organization_id)
                        .one(conn)
                        .await?
                        .map(|o| o.plan)
                        .unwrap_or_default(),
                );
            }
            let plan_minimum = app
                .settings
                .plan_limits
                .for_plan(plan.as_deref().unwrap_or_default())
                .min_owners;
            minimum = Ord::max(minimum, plan_minimum);
        }
        if (remaining as u64) < minimum {
            return Err(DomainError::LastOwner(format!(
                "the organization must keep at least {minimum} holder(s) of `{}`",
                role.name
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
        // Taking a role away needs its keys now, however long they are held.
        Some(app.now()),
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

/// Removes up to `batch` bindings that have ended (decisions ignored them from their end on),
/// recording `role.expire` for each, in one short transaction. Returns how many went.
pub async fn expire_due(app: &App, batch: u64) -> DomainResult<usize> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let due = role_bindings::Entity::find()
        .filter(role_bindings::Column::ExpiresAt.lte(now))
        .order_by_asc(role_bindings::Column::ExpiresAt)
        .limit(batch)
        .all(&tx)
        .await?;
    if due.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let membership_ids: Vec<Uuid> = due.iter().map(|b| b.membership_id).collect();
    let organization_of: std::collections::HashMap<Uuid, Uuid> = memberships::Entity::find()
        .filter(memberships::Column::Id.is_in(membership_ids))
        .all(&tx)
        .await?
        .into_iter()
        .map(|m| (m.id, m.organization_id))
        .collect();
    let role_ids: Vec<Uuid> = due.iter().map(|b| b.role_id).collect();
    let role_names: std::collections::HashMap<Uuid, String> = roles::Entity::find()
        .filter(roles::Column::Id.is_in(role_ids))
        .all(&tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    // Only what this transaction removes is recorded: another process sweeping at the same
    // time, or a revoke or grant that removed a binding first, leaves no second event.
    let due = role_bindings::Entity::delete_many()
        .filter(role_bindings::Column::Id.is_in(due.iter().map(|b| b.id).collect::<Vec<_>>()))
        .filter(role_bindings::Column::ExpiresAt.lte(now))
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
                organization_id: organization_of.get(&binding.membership_id).copied(),
                actor: audit::Actor {
                    user_id: None,
                    token_id: None,
                },
                action: "role.expire",
                target: Some(("Membership", binding.membership_id)),
                details: json!({
                    "role": role_names.get(&binding.role_id), "roleId": binding.role_id,
                    "workspaceId": binding.workspace_id, "bindingId": binding.id,
                    "expiresAt": binding.expires_at, "reason": binding.reason,
                    "grantedBy": binding.granted_by_user_id,
                }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// Every `interval`, removes the bindings that have ended, in batches of 500. Stops once the app
/// is gone.
pub fn spawn_expiry(app: &std::sync::Arc<App>, interval: std::time::Duration) {
    let app = std::sync::Arc::downgrade(app);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(app) = app.upgrade() else { return };
            loop {
                match expire_due(&app, 500).await {
                    Ok(500) => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "removing ended role bindings");
                        break;
                    }
                }
            }
            loop {
                match super::teams::expire_due(&app, 500).await {
                    Ok(500) => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "removing ended team role bindings");
                        break;
                    }
                }
            }
        }
    });
}
