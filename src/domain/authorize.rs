//! "May I use key K in organization O (in workspace W)?" with the bindings and keychains that
//! allow it, or the reason it is denied.
use uuid::Uuid;

use crate::authz::KeyIndex;

use super::App;
use super::access::{self, MemberAccess};
use super::definitions;
use super::error::DomainResult;

/// One binding that grants the key, and through which keychain (None: a direct key of the role).
#[derive(Clone, Debug)]
pub struct GrantSource {
    pub binding_id: Uuid,
    pub role_id: Uuid,
    pub workspace_id: Option<Uuid>,
    pub keychain_id: Option<Uuid>,
    /// The key the role holds that is or implies the asked key.
    pub via_key: String,
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
        .bindings
        .iter()
        .filter(|b| match b.binding.workspace_id {
            None => true,
            Some(w) => Some(w) == workspace_id && !wide,
        })
        .filter(|b| b.role_keys.contains(key))
        .collect();
    if applicable.is_empty() {
        let reason = if access.bindings.is_empty() {
            "you hold no role in this organization".to_owned()
        } else if wide && workspace_id.is_some() && access.bindings.iter().any(|b| b.role_keys.contains(key)) {
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
    let custom: Vec<Uuid> = applicable
        .iter()
        .map(|b| b.binding.role_id)
        .filter(|id| app.builtins.role(id).is_none())
        .collect();
    let definitions = definitions::definitions_of(conn, app, &custom).await?;
    let mut chain_ids: Vec<Uuid> = definitions.values().flat_map(|d| d.keychain_ids.clone()).collect();
    for binding in &applicable {
        if let Some(chains) = app.builtins.role_keychains(&binding.binding.role_id) {
            chain_ids.extend_from_slice(chains);
        }
    }
    let chains = access::keychain_key_sets(conn, app, &chain_ids).await?;
    // The first key of a set whose closure contains the asked key.
    let via = |set: &crate::authz::KeySet| -> Option<String> {
        set.iter()
            .find(|k| catalog.implies(*k, key))
            .map(|k| catalog.key(k).id.clone())
    };
    let mut grants = Vec::new();
    for binding in &applicable {
        let role_id = binding.binding.role_id;
        let (direct, role_chains) = match app.builtins.role_keychains(&role_id) {
            Some(chains) => (crate::authz::KeySet::EMPTY, chains.to_vec()),
            None => definitions
                .get(&role_id)
                .map(|d| (d.keys, d.keychain_ids.clone()))
                .unwrap_or_default(),
        };
        if let Some(via_key) = via(&direct) {
            grants.push(GrantSource {
                binding_id: binding.binding.id,
                role_id,
                workspace_id: binding.binding.workspace_id,
                keychain_id: None,
                via_key,
            });
        }
        for chain in role_chains {
            if let Some(via_key) = chains.get(&chain).and_then(&via) {
                grants.push(GrantSource {
                    binding_id: binding.binding.id,
                    role_id,
                    workspace_id: binding.binding.workspace_id,
                    keychain_id: Some(chain),
                    via_key,
                });
            }
        }
    }
    Ok(Decision {
        allowed: true,
        reason: format!("`{key_id}` is granted by {} binding(s)", applicable.len()),
        grants,
    })
}
