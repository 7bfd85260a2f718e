//! "May I use key K in organization O (in workspace W)?" with the bindings and keychains that
//! allow it, or the reason it is denied.
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::authz::{KeyIndex, KeySet};
use crate::store::entities::{keychains, role_bindings};

use super::App;
use super::access::{self, MemberAccess};
use super::definitions;
use super::error::DomainResult;

/// One binding that grants the key, and through which keychain (None: a direct key of the role).
#[derive(Clone, Debug)]
pub struct GrantSource {
    /// A team's binding comes shaped as its member's (see [`super::teams::as_member_binding`]).
    pub binding: role_bindings::Model,
    /// The team the binding is held through; `None` for a member's own.
    pub team_id: Option<Uuid>,
    pub role_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub keychain_id: Option<Uuid>,
    /// That keychain's row when read ahead ([`attach_keychains`]).
    pub keychain: Option<keychains::Model>,
    /// The key the role holds that is or implies the asked key.
    pub via_key: String,
    /// From `via_key` to the asked key, each key implying the next directly (one key when the
    /// role holds the asked key itself).
    pub implication: Vec<String>,
}

/// The answer of `authorize`.
#[derive(Clone, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
    pub grants: Vec<GrantSource>,
}

/// Explains a decision for a member at a scope.
pub async fn decide<C: sea_orm::ConnectionTrait>(
    conn: &C,
    app: &App,
    access: &MemberAccess,
    key: KeyIndex,
    workspace_id: Option<Uuid>,
) -> DomainResult<Decision> {
    let catalog = &app.catalog;
    let key_id = catalog.key(key).id.clone();
    let wide = catalog.key(key).organization_wide;
    if access.mask.is_some_and(|mask| !mask.contains(key)) {
        return Ok(Decision {
            allowed: false,
            reason: format!("the API token in use is bound to a keychain without `{key_id}`"),
            grants: Vec::new(),
        });
    }
    let applicable: Vec<&access::ResolvedBinding> = access
        .in_force(app)
        .filter(|b| match b.binding.workspace_id {
            None => true,
            Some(w) => Some(w) == workspace_id && !wide,
        })
        .filter(|b| b.role_keys.contains(key))
        .collect();
    if applicable.is_empty() {
        let reason = if access.in_force(app).next().is_none() {
            "you hold no role in this organization".to_owned()
        } else if wide && workspace_id.is_some() && access.in_force(app).any(|b| b.role_keys.contains(key)) {
            format!("`{key_id}` is organization-wide: only an organization-wide role can grant it")
        } else {
            format!("none of your roles grants `{key_id}` here")
        };
        return Ok(Decision {
            allowed: false,
            reason,
            grants: Vec::new(),
        });
    }
    let bindings: Vec<&role_bindings::Model> = applicable.iter().map(|b| &b.binding).collect();
    let mut grants = explain(conn, app, &bindings, key).await?;
    let teams: std::collections::HashMap<Uuid, Uuid> = applicable
        .iter()
        .filter_map(|b| b.team_id.map(|team| (b.binding.id, team)))
        .collect();
    name_teams(&mut grants, &teams);
    Ok(Decision {
        allowed: true,
        reason: format!("`{key_id}` is granted by {} binding(s)", applicable.len()),
        grants,
    })
}

/// The grants through which each of `bindings` (all of roles holding `key` at their scope)
/// gives `key`: the role's direct keys and keychains that carry it or a key implying it, with
/// the chain of implications. Reads the custom roles' definitions and keychains once for all
/// the bindings (at most three statements, however many bindings).
pub async fn explain<C: sea_orm::ConnectionTrait>(
    conn: &C,
    app: &App,
    bindings: &[&role_bindings::Model],
    key: KeyIndex,
) -> DomainResult<Vec<GrantSource>> {
    let catalog = &app.catalog;
    let mut custom: Vec<Uuid> = bindings
        .iter()
        .map(|b| b.role_id)
        .filter(|id| app.builtins.role(id).is_none())
        .collect();
    custom.sort();
    custom.dedup();
    let definitions = definitions::definitions_of(conn, app, &custom).await?;
    let mut chain_ids: Vec<Uuid> = definitions.values().flat_map(|d| d.keychain_ids.clone()).collect();
    for binding in bindings {
        if let Some(chains) = app.builtins.role_keychains(&binding.role_id) {
            chain_ids.extend_from_slice(chains);
        }
    }
    chain_ids.sort();
    chain_ids.dedup();
    let chains = access::keychain_key_sets(conn, app, &chain_ids).await?;
    // The asked key itself when the set lists it, else the first key implying it, with the
    // way there.
    let via = |set: &KeySet| -> Option<(String, Vec<String>)> {
        let held = if set.contains(key) {
            key
        } else {
            set.iter().find(|k| catalog.implies(*k, key))?
        };
        Some((catalog.key(held).id.clone(), implication_path(catalog, held, key)))
    };
    let mut grants = Vec::new();
    for binding in bindings {
        let role_id = binding.role_id;
        let (direct, role_chains) = match app.builtins.role_keychains(&role_id) {
            Some(chains) => (KeySet::EMPTY, chains.to_vec()),
            None => definitions
                .get(&role_id)
                .map(|d| (d.keys, d.keychain_ids.clone()))
                .unwrap_or_default(),
        };
        let source = |keychain_id: Option<Uuid>, (via_key, implication): (String, Vec<String>)| GrantSource {
            binding: (*binding).clone(),
            team_id: None,
            role_id,
            workspace_id: binding.workspace_id,
            keychain_id,
            keychain: None,
            via_key,
            implication,
        };
        if let Some(found) = via(&direct) {
            grants.push(source(None, found));
        }
        for chain in role_chains {
            if let Some(found) = chains.get(&chain).and_then(&via) {
                grants.push(source(Some(chain), found));
            }
        }
    }
    Ok(grants)
}

/// Sets the team of each grant whose binding is a team's (`teams`: binding id to team id).
pub fn name_teams(grants: &mut [GrantSource], teams: &std::collections::HashMap<Uuid, Uuid>) {
    for grant in grants {
        grant.team_id = teams.get(&grant.binding.id).copied();
    }
}

/// Reads the keychain rows of `grants` (`GrantSource::keychain`) in one statement, for answers
/// with many grants; without it each grant's keychain is read when asked for.
pub async fn attach_keychains<C: sea_orm::ConnectionTrait>(conn: &C, grants: &mut [GrantSource]) -> DomainResult<()> {
    let mut named: Vec<Uuid> = grants.iter().filter_map(|g| g.keychain_id).collect();
    named.sort();
    named.dedup();
    if !named.is_empty() {
        let rows: std::collections::HashMap<Uuid, keychains::Model> = keychains::Entity::find()
            .filter(keychains::Column::Id.is_in(named))
            .all(conn)
            .await?
            .into_iter()
            .map(|k| (k.id, k))
            .collect();
        for grant in grants.iter_mut() {
            grant.keychain = grant.keychain_id.and_then(|id| rows.get(&id).cloned());
        }
    }
    Ok(())
}

/// The shortest chain of direct implications from `from` to `to`, both included.
fn implication_path(catalog: &crate::authz::Catalog, from: KeyIndex, to: KeyIndex) -> Vec<String> {
    let mut came_from: std::collections::HashMap<KeyIndex, KeyIndex> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![catalog.key(at).id.clone()];
            let mut step = at;
            while let Some(previous) = came_from.get(&step) {
                path.push(catalog.key(*previous).id.clone());
                step = *previous;
            }
            path.reverse();
            return path;
        }
        for next in &catalog.key(at).implies {
            if *next != from && !came_from.contains_key(next) {
                came_from.insert(*next, at);
                queue.push_back(*next);
            }
        }
    }
    vec![catalog.key(from).id.clone(), catalog.key(to).id.clone()]
}
