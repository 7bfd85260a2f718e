//! What a member may do in an organization: their bindings resolved to key sets.
use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::authz::{self, Binding, KeyIndex, KeySet};
use crate::store::entities::{keychain_keys, memberships, organizations, role_bindings, role_keychains, role_keys};

use super::App;
use super::error::{DomainError, DomainResult};

/// A role binding with its role's effective keys.
#[derive(Clone, Debug)]
pub struct ResolvedBinding {
    /// A team's binding comes shaped as the member's own (same id and terms).
    pub binding: role_bindings::Model,
    pub role_keys: KeySet,
    /// The team it is held through; `None` for the member's own binding.
    pub team_id: Option<Uuid>,
}

/// A member's standing in one organization, read fresh for each request.
#[derive(Clone, Debug)]
pub struct MemberAccess {
    pub membership: memberships::Model,
    pub bindings: Vec<ResolvedBinding>,
    /// When acting through an API token bound to a keychain: only these keys count.
    pub mask: Option<KeySet>,
    /// Whether the organization requires two-factor sign-in of its members.
    pub organization_requires_two_factor: bool,
    /// Set on the caller's own access when the organization requires two-factor sign-in and
    /// their account has none: then nothing is in force and every key check answers
    /// TWO_FACTOR_REQUIRED until they enrol.
    pub second_factor_missing: bool,
}

impl MemberAccess {
    /// The bindings that grant anything now: one that has ended counts for nothing from that
    /// instant, however long this standing has been kept.
    pub fn in_force(&self, app: &App) -> impl Iterator<Item = &ResolvedBinding> {
        let now = app.now();
        let locked = self.second_factor_missing;
        self.bindings
            .iter()
            .filter(move |b| !locked && super::bindings::in_force(&b.binding, now))
    }

    /// Keys at the organization (`None`) or inside one workspace.
    pub fn keys_at(&self, app: &App, workspace: Option<Uuid>) -> KeySet {
        self.keys_through(app, workspace, |_| true)
    }

    /// Keys at a scope held through bindings that last at least until `until` (`None`: through
    /// bindings that never end): what the member may hand out for that long. A key held only for
    /// a time is never given for longer.
    pub fn keys_held_until(
        &self,
        app: &App,
        workspace: Option<Uuid>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> KeySet {
        self.keys_through(app, workspace, |b| {
            super::bindings::lasts_as_long(b.binding.expires_at, until)
        })
    }

    /// Every key held at a scope with the instant it stops being held: `None` when some binding
    /// giving it never ends, otherwise the latest end among the bindings that give it.
    pub fn keys_with_ends(
        &self,
        app: &App,
        workspace: Option<Uuid>,
    ) -> Vec<(KeyIndex, Option<chrono::DateTime<chrono::Utc>>)> {
        let lasting = self.keys_held_until(app, workspace, None);
        let mut ends: Vec<chrono::DateTime<chrono::Utc>> =
            self.in_force(app).filter_map(|b| b.binding.expires_at).collect();
        ends.sort_unstable_by(|a, b| b.cmp(a));
        ends.dedup();
        // Latest end first: the first set holding a key names when it ends.
        let until: Vec<(chrono::DateTime<chrono::Utc>, KeySet)> = ends
            .into_iter()
            .map(|end| (end, self.keys_held_until(app, workspace, Some(end))))
            .collect();
        self.keys_at(app, workspace)
            .iter()
            .map(|key| {
                let end = if lasting.contains(key) {
                    None
                } else {
                    until.iter().find(|(_, keys)| keys.contains(key)).map(|(end, _)| *end)
                };
                (key, end)
            })
            .collect()
    }

    fn keys_through(&self, app: &App, workspace: Option<Uuid>, keep: impl Fn(&ResolvedBinding) -> bool) -> KeySet {
        let bindings: Vec<Binding<Uuid>> = self
            .in_force(app)
            .filter(|b| keep(b))
            .map(|b| Binding {
                keys: b.role_keys,
                workspace: b.binding.workspace_id,
            })
            .collect();
        let keys = authz::keys_at(&app.catalog, &bindings, workspace.as_ref());
        match &self.mask {
            Some(mask) => keys.intersection(mask),
            None => keys,
        }
    }

    /// Whether the member holds `key` at that scope (`None` for a key the catalog lacks).
    pub fn holds(&self, app: &App, key: &str, workspace: Option<Uuid>) -> Option<bool> {
        let index = app.catalog.lookup(key)?;
        Some(self.keys_at(app, workspace).contains(index))
    }

    /// FORBIDDEN naming the key unless the member holds it at that scope; counted as a decision.
    pub fn require(&self, app: &App, key: &str, workspace: Option<Uuid>) -> DomainResult<()> {
        if self.second_factor_missing {
            app.store.metrics.decision(key, false);
            return Err(DomainError::two_factor_setup_required());
        }
        let allowed = self
            .holds(app, key, workspace)
            .ok_or_else(|| DomainError::Internal(format!("guard names unknown key {key}")))?;
        app.store.metrics.decision(key, allowed);
        if allowed {
            Ok(())
        } else {
            Err(self.deny(DomainError::forbidden_key(key)))
        }
    }

    /// Marks a refusal as happening inside this member's organization, for the audit log.
    pub fn deny(&self, err: DomainError) -> DomainError {
        match err {
            DomainError::Forbidden { .. } => DomainError::ForbiddenIn(Box::new(err), self.membership.organization_id),
            other => other,
        }
    }

    /// Whether the member holds the role organization-wide themself (ownership stays personal:
    /// a team's binding never counts here).
    pub fn holds_role(&self, app: &App, role_id: Uuid) -> bool {
        self.in_force(app)
            .any(|b| b.team_id.is_none() && b.binding.role_id == role_id && b.binding.workspace_id.is_none())
    }

    /// The member's own bindings, without those held through teams.
    pub fn own_bindings(&self) -> impl Iterator<Item = &role_bindings::Model> {
        self.bindings.iter().filter(|b| b.team_id.is_none()).map(|b| &b.binding)
    }
}

/// Loads the caller's membership and bindings in an organization; `None` when not a member.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user_id: Uuid,
    organization_id: Uuid,
) -> DomainResult<Option<MemberAccess>> {
    let Some((membership, organization)) = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .filter(memberships::Column::UserId.eq(user_id))
        .find_also_related(organizations::Entity)
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let held = super::teams::bindings_of_members(conn, &[membership.id]).await?;
    let bindings = resolve(conn, app, held).await?;
    Ok(Some(MemberAccess {
        membership,
        bindings,
        mask: None,
        organization_requires_two_factor: organization.is_some_and(|o| o.require_two_factor),
        second_factor_missing: false,
    }))
}

/// Loads a user's access in many organizations at once (a fixed number of statements).
pub async fn load_many<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user_id: Uuid,
    organization_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, MemberAccess>> {
    let memberships = memberships::Entity::find()
        .filter(memberships::Column::UserId.eq(user_id))
        .filter(memberships::Column::OrganizationId.is_in(organization_ids.to_vec()))
        .find_also_related(organizations::Entity)
        .all(conn)
        .await?;
    if memberships.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = memberships.iter().map(|(m, _)| m.id).collect();
    let held = super::teams::bindings_of_members(conn, &ids).await?;
    let bindings = resolve(conn, app, held).await?;
    let mut out: HashMap<Uuid, MemberAccess> = memberships
        .into_iter()
        .map(|(m, organization)| {
            (
                m.id,
                MemberAccess {
                    membership: m,
                    bindings: Vec::new(),
                    mask: None,
                    organization_requires_two_factor: organization.is_some_and(|o| o.require_two_factor),
                    second_factor_missing: false,
                },
            )
        })
        .collect();
    for binding in bindings {
        if let Some(access) = out.get_mut(&binding.binding.membership_id) {
            access.bindings.push(binding);
        }
    }
    Ok(out.into_values().map(|a| (a.membership.organization_id, a)).collect())
}

/// Members' own bindings and those they hold through teams (`Some(team)`), with their roles'
/// keys (read in at most three statements).
async fn resolve<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    held: Vec<(Option<Uuid>, role_bindings::Model)>,
) -> DomainResult<Vec<ResolvedBinding>> {
    let role_ids: Vec<Uuid> = held.iter().map(|(_, b)| b.role_id).collect();
    let keys = role_key_sets(conn, app, &role_ids).await?;
    Ok(held
        .into_iter()
        .map(|(team_id, binding)| ResolvedBinding {
            role_keys: keys.get(&binding.role_id).copied().unwrap_or_default(),
            binding,
            team_id,
        })
        .collect())
}

/// Whether an API token in use hides the organization entirely.
fn hidden_by_token(principal: &super::Principal, organization_id: Uuid) -> bool {
    principal
        .token
        .and_then(|t| t.organization_id)
        .is_some_and(|only| only != organization_id)
}

/// Whether the caller must turn on two-factor sign-in before anything counts in an organization
/// that requires it. Service accounts are exempt: they sign in with tokens alone. A person's
/// own API token is not: it acts as its person, so a member cannot step around the requirement
/// by minting one (a person who has two-factor on uses their tokens without any code). A
/// person signed in through an identity provider that says a second factor was used counts
/// as having one.
fn second_factor_missing(access: &MemberAccess, principal: &super::Principal) -> bool {
    access.organization_requires_two_factor && principal.user.kind != "SERVICE" && !principal.has_second_factor()
}

/// A member's access as the caller holds it: narrowed by their API token's keychain, and held
/// back while the organization requires a second factor the caller has not set up.
fn seen_by(access: Arc<MemberAccess>, principal: &super::Principal) -> Arc<MemberAccess> {
    let mask = principal.token.and_then(|t| t.keychain_keys);
    let missing = second_factor_missing(&access, principal);
    if mask.is_none() && !missing {
        return access;
    }
    Arc::new(MemberAccess {
        mask,
        second_factor_missing: missing,
        ..(*access).clone()
    })
}

/// The caller's access to an organization from the shared cache, when it is there and still
/// current: `Some(None)` means known not to be visible to the caller.
pub fn cached(app: &App, principal: &super::Principal, organization_id: Uuid) -> Option<Option<Arc<MemberAccess>>> {
    if hidden_by_token(principal, organization_id) {
        return Some(None);
    }
    let hit = app.standing.member(principal.user.id, organization_id)?;
    Some(hit.map(|access| seen_by(access, principal)))
}

/// The caller's access in many organizations: from the shared cache where it is current, the
/// rest read in a fixed number of statements (and kept). Organizations the caller cannot see
/// are absent. Reads outside any transaction; mutations read their own inside theirs.
pub async fn for_principal_many(
    app: &App,
    principal: &super::Principal,
    organization_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Arc<MemberAccess>>> {
    let user_id = principal.user.id;
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    for organization_id in organization_ids {
        match cached(app, principal, *organization_id) {
            Some(Some(access)) => {
                out.insert(*organization_id, access);
            }
            Some(None) => {}
            None => missing.push(*organization_id),
        }
    }
    if !missing.is_empty() {
        let read_at = app.standing.generation();
        let mut found = load_many(&app.store.conn, app, user_id, &missing).await?;
        for organization_id in missing {
            let access = found.remove(&organization_id).map(Arc::new);
            app.standing
                .keep_member(read_at, user_id, organization_id, access.clone());
            if let Some(access) = access {
                out.insert(organization_id, seen_by(access, principal));
            }
        }
    }
    Ok(out)
}

/// The caller's access: their live access as a user, narrowed by the API token they act
/// through (another organization than the token's is invisible; a keychain masks the keys).
pub async fn for_principal<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &super::Principal,
    organization_id: Uuid,
) -> DomainResult<Option<MemberAccess>> {
    if hidden_by_token(principal, organization_id) {
        return Ok(None);
    }
    let mut access = load(conn, app, principal.user.id, organization_id).await?;
    if let Some(access) = access.as_mut() {
        access.mask = principal.token.and_then(|t| t.keychain_keys);
        access.second_factor_missing = second_factor_missing(access, principal);
    }
    Ok(access)
}

/// Effective keys (closed under `implies`) of each role: built-in ones from the catalog, custom
/// ones from their direct keys and keychains, in at most three statements.
pub async fn role_key_sets<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    role_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, KeySet>> {
    let mut out = HashMap::new();
    let mut custom = Vec::new();
    for id in role_ids {
        match app.builtins.role(id) {
            Some(i) => {
                out.insert(*id, app.catalog.roles[i].effective_keys);
            }
            None => custom.push(*id),
        }
    }
    if custom.is_empty() {
        return Ok(out);
    }
    custom.sort();
    custom.dedup();
    let direct = role_keys::Entity::find()
        .filter(role_keys::Column::RoleId.is_in(custom.clone()))
        .all(conn)
        .await?;
    let chains = role_keychains::Entity::find()
        .filter(role_keychains::Column::RoleId.is_in(custom.clone()))
        .all(conn)
        .await?;
    let chain_keys = keychain_key_sets(conn, app, &chains.iter().map(|c| c.keychain_id).collect::<Vec<_>>()).await?;
    let mut raw: HashMap<Uuid, KeySet> = custom.iter().map(|id| (*id, KeySet::EMPTY)).collect();
    for row in direct {
        if let (Some(set), Some(key)) = (raw.get_mut(&row.role_id), app.catalog.lookup(&row.key)) {
            set.insert(key);
        }
    }
    for link in chains {
        if let (Some(set), Some(keys)) = (raw.get_mut(&link.role_id), chain_keys.get(&link.keychain_id)) {
            set.union_with(keys);
        }
    }
    // Owner-only keys come through `owner` alone: even a custom role stored before that rule
    // (or written behind the server's back) never yields one.
    let owner_only = app.catalog.owner_only_keys();
    for (id, set) in raw {
        out.insert(id, app.catalog.close(&set).difference(&owner_only));
    }
    Ok(out)
}

/// Listed keys of each keychain (not closed): built-in from the catalog, custom from the database.
pub async fn keychain_key_sets<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    keychain_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, KeySet>> {
    let mut out = HashMap::new();
    let mut custom = Vec::new();
    for id in keychain_ids {
        match app.builtins.keychain(id) {
            Some(i) => {
                out.insert(*id, app.catalog.keychains[i].keys);
            }
            None => custom.push(*id),
        }
    }
    if !custom.is_empty() {
        custom.sort();
        custom.dedup();
        for id in &custom {
            out.insert(*id, KeySet::EMPTY);
        }
        let rows = keychain_keys::Entity::find()
            .filter(keychain_keys::Column::KeychainId.is_in(custom))
            .all(conn)
            .await?;
        for row in rows {
            if let (Some(set), Some(key)) = (out.get_mut(&row.keychain_id), app.catalog.lookup(&row.key)) {
                set.insert(key);
            }
        }
    }
    Ok(out)
}
