//! The key catalog: keys, their implications, built-in keychains and built-in roles, loaded from
//! data and validated once at start so that every later decision can trust it.
use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::keyset::{KeyIndex, KeySet, MAX_KEYS};

/// The catalog shipped inside the binary.
pub const DEFAULT_CATALOG: &str = include_str!("catalog.default.json");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("the catalog is not valid JSON: {0}")]
    Syntax(String),
    #[error("key `{0}` is declared twice")]
    DuplicateKey(String),
    #[error("key id `{0}` is not of the form area.action (lower-case letters, digits and underscores)")]
    MalformedKey(String),
    #[error("key `{key}` implies `{implied}`, which the catalog does not declare")]
    UnknownImpliedKey { key: String, implied: String },
    #[error("implications form a cycle: {0}")]
    Cycle(String),
    #[error("the catalog declares {0} keys; at most {MAX_KEYS} are supported")]
    TooManyKeys(usize),
    #[error("{owner} `{name}` refers to `{pattern}`, which matches no key")]
    UnmatchedPattern {
        owner: &'static str,
        name: String,
        pattern: String,
    },
    #[error("{kind} `{0}` is declared twice", kind = "name")]
    DuplicateName(String),
    #[error("role `{role}` uses keychain `{keychain}`, which the catalog does not declare")]
    UnknownKeychain { role: String, keychain: String },
    #[error("the catalog must declare a role named `owner` holding every key")]
    MissingOwner,
    #[error("role `{role}` carries the owner-only key `{key}`; only the role `owner` may")]
    OwnerOnlyOutsideOwner { role: String, key: String },
    #[error("notification category id `{0}` is not lower-case letters, digits and underscores")]
    MalformedCategory(String),
    #[error("notification category `{category}` is sent with `{key}`, which the catalog does not declare")]
    UnknownSendKey { category: String, key: String },
    #[error("key `{key}` implies `{implied}`, which is {what} while `{key}` is not")]
    WiderImplication {
        key: String,
        implied: String,
        what: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    keys: Vec<KeyFile>,
    #[serde(default)]
    keychains: Vec<KeychainFile>,
    #[serde(default)]
    roles: Vec<RoleFile>,
    #[serde(default)]
    notification_categories: Vec<CategoryFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CategoryFile {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    send_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFile {
    id: String,
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner_only: bool,
    #[serde(default)]
    organization_wide: bool,
    #[serde(default)]
    implies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeychainFile {
    name: String,
    #[serde(default)]
    description: String,
    keys: Vec<String>,
    #[serde(default)]
    exclude_owner_only: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleFile {
    name: String,
    #[serde(default)]
    description: String,
    scope: RoleScope,
    #[serde(default)]
    keychains: Vec<String>,
    #[serde(default)]
    min_holders: u32,
    #[serde(default)]
    max_holders: Option<u32>,
    #[serde(default)]
    counts_as_admin: bool,
    granted_by: GrantedBy,
}

/// Where a role may be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoleScope {
    Organization,
    Workspace,
    Any,
}

impl RoleScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleScope::Organization => "ORGANIZATION",
            RoleScope::Workspace => "WORKSPACE",
            RoleScope::Any => "ANY",
        }
    }

    pub fn parse(value: &str) -> Option<RoleScope> {
        match value {
            "ORGANIZATION" => Some(RoleScope::Organization),
            "WORKSPACE" => Some(RoleScope::Workspace),
            "ANY" => Some(RoleScope::Any),
            _ => None,
        }
    }
}

/// Who may grant a built-in role, on top of the no-escalation rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantedBy {
    Owners,
    Any,
}

impl GrantedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantedBy::Owners => "OWNERS",
            GrantedBy::Any => "ANY",
        }
    }
}

/// One capability of the catalog.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub category: String,
    pub description: String,
    pub owner_only: bool,
    pub organization_wide: bool,
    /// Keys named directly in `implies`.
    pub implies: Vec<KeyIndex>,
}

/// A built-in keychain.
#[derive(Clone, Debug)]
pub struct BuiltInKeychain {
    pub name: String,
    pub description: String,
    /// The keys the keychain lists (not closed under implication).
    pub keys: KeySet,
}

/// A built-in role.
#[derive(Clone, Debug)]
pub struct BuiltInRole {
    pub name: String,
    pub description: String,
    pub scope: RoleScope,
    pub keychains: Vec<usize>,
    pub min_holders: u32,
    pub max_holders: Option<u32>,
    pub counts_as_admin: bool,
    pub granted_by: GrantedBy,
    /// Union of the role's keychains, closed under implication.
    pub effective_keys: KeySet,
}

/// A kind of mail an organization sends, which subscriber contacts choose to receive.
#[derive(Clone, Debug)]
pub struct NotificationCategory {
    /// Stable id, e.g. `accounting_documents`.
    pub id: String,
    pub name: String,
    pub description: String,
    /// The key a caller needs to send mail of this category to an organization's contacts.
    pub send_key: KeyIndex,
}

/// The validated catalog.
#[derive(Debug)]
pub struct Catalog {
    keys: Vec<Key>,
    by_id: HashMap<String, KeyIndex>,
    /// For each key, itself and everything it implies transitively.
    closure: Vec<KeySet>,
    all: KeySet,
    owner_only: KeySet,
    organization_wide: KeySet,
    /// Keys that only roles granted by owners carry (see [`Catalog::owner_granted_keys`]).
    owner_granted: KeySet,
    /// Keys that only roles counted as admins carry (see [`Catalog::admin_class_keys`]).
    admin_class: KeySet,
    pub keychains: Vec<BuiltInKeychain>,
    pub roles: Vec<BuiltInRole>,
    pub notification_categories: Vec<NotificationCategory>,
}

fn valid_key_id(id: &str) -> bool {
    let Some((area, action)) = id.split_once('.') else {
        return false;
    };
    let part = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    part(area) && part(action)
}

fn glob_matches(pattern: &str, id: &str) -> bool {
    if pattern == "*" {
        true
    } else if let Some(suffix) = pattern.strip_prefix("*.") {
        id.split_once('.').is_some_and(|(_, action)| action == suffix)
    } else if let Some(prefix) = pattern.strip_suffix(".*") {
        id.split_once('.').is_some_and(|(area, _)| area == prefix)
    } else {
        pattern == id
    }
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn builtin() -> Catalog {
        Catalog::from_json(DEFAULT_CATALOG).expect("the built-in catalog is valid")
    }

    /// Parses and validates a catalog document.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = serde_json::from_str(text).map_err(|e| CatalogError::Syntax(e.to_string()))?;
        if file.keys.len() > MAX_KEYS {
            return Err(CatalogError::TooManyKeys(file.keys.len()));
        }
        let mut by_id = HashMap::new();
        for (i, key) in file.keys.iter().enumerate() {
            if !valid_key_id(&key.id) {
                return Err(CatalogError::MalformedKey(key.id.clone()));
            }
            if by_id.insert(key.id.clone(), KeyIndex(i as u16)).is_some() {
                return Err(CatalogError::DuplicateKey(key.id.clone()));
            }
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for key in &file.keys {
            let mut implies = Vec::new();
            for implied in &key.implies {
                let idx = by_id.get(implied).ok_or_else(|| CatalogError::UnknownImpliedKey {
                    key: key.id.clone(),
                    implied: implied.clone(),
                })?;
                implies.push(*idx);
            }
            keys.push(Key {
                id: key.id.clone(),
                category: key.category.clone(),
                description: key.description.clone(),
                owner_only: key.owner_only,
                organization_wide: key.organization_wide,
                implies,
            });
        }
        let closure = compute_closure(&keys)?;
        // An implication must never widen a grant: a key usable inside a workspace cannot bring
        // in an organization-wide key, and an ordinary key cannot bring in an owner-only one.
        for key in &keys {
            for implied in &key.implies {
                let target = &keys[implied.0 as usize];
                let what = if target.organization_wide && !key.organization_wide {
                    Some("organization-wide")
                } else if target.owner_only && !key.owner_only {
                    Some("owner-only")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(CatalogError::WiderImplication {
                        key: key.id.clone(),
                        implied: target.id.clone(),
                        what,
                    });
                }
            }
        }
        let all: KeySet = (0..keys.len()).map(|i| KeyIndex(i as u16)).collect();
        let owner_only = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.owner_only)
            .map(|(i, _)| KeyIndex(i as u16))
            .collect();
        let organization_wide = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.organization_wide)
            .map(|(i, _)| KeyIndex(i as u16))
            .collect();
        let mut catalog = Catalog {
            keys,
            by_id,
            closure,
            all,
            owner_only,
            organization_wide,
            owner_granted: KeySet::EMPTY,
            admin_class: KeySet::EMPTY,
            keychains: Vec::new(),
            roles: Vec::new(),
            notification_categories: Vec::new(),
        };

        let mut names = HashSet::new();
        for chain in &file.keychains {
            if !names.insert(chain.name.clone()) {
                return Err(CatalogError::DuplicateName(chain.name.clone()));
            }
            let mut set = KeySet::EMPTY;
            for pattern in &chain.keys {
                let matched = catalog.match_pattern(pattern);
                if matched.is_empty() {
                    return Err(CatalogError::UnmatchedPattern {
                        owner: "keychain",
                        name: chain.name.clone(),
                        pattern: pattern.clone(),
                    });
                }
                set.union_with(&matched);
            }
            if chain.exclude_owner_only {
                set = set.difference(&catalog.owner_only);
            }
            catalog.keychains.push(BuiltInKeychain {
                name: chain.name.clone(),
                description: chain.description.clone(),
                keys: set,
            });
        }
        let mut role_names = HashSet::new();
        for role in &file.roles {
            if !role_names.insert(role.name.clone()) {
                return Err(CatalogError::DuplicateName(role.name.clone()));
            }
            let mut chains = Vec::new();
            let mut keys = KeySet::EMPTY;
            for chain in &role.keychains {
                let idx = catalog.keychains.iter().position(|k| &k.name == chain).ok_or_else(|| {
                    CatalogError::UnknownKeychain {
                        role: role.name.clone(),
                        keychain: chain.clone(),
                    }
                })?;
                keys.union_with(&catalog.keychains[idx].keys);
                chains.push(idx);
            }
            let effective_keys = catalog.close(&keys);
            catalog.roles.push(BuiltInRole {
                name: role.name.clone(),
                description: role.description.clone(),
                scope: role.scope,
                keychains: chains,
                min_holders: role.min_holders,
                max_holders: role.max_holders,
                counts_as_admin: role.counts_as_admin,
                granted_by: role.granted_by,
                effective_keys,
            });
        }
        match catalog.role("owner") {
            Some(owner) if owner.effective_keys == catalog.all => {}
            _ => return Err(CatalogError::MissingOwner),
        }
        // Owner-only keys are held through `owner` and nothing else, so "is an owner" and
        // "holds an owner-only key" can never disagree.
        for role in catalog.roles.iter().filter(|r| r.name != "owner") {
            if let Some(key) = role.effective_keys.intersection(&catalog.owner_only).iter().next() {
                return Err(CatalogError::OwnerOnlyOutsideOwner {
                    role: role.name.clone(),
                    key: catalog.key(key).id.clone(),
                });
            }
        }
        let carried_by = |pick: &dyn Fn(&BuiltInRole) -> bool| {
            catalog
                .roles
                .iter()
                .filter(|r| pick(r))
                .fold(KeySet::EMPTY, |acc, r| acc.union(&r.effective_keys))
        };
        catalog.owner_granted = catalog
            .all
            .difference(&carried_by(&|r| r.granted_by == GrantedBy::Any))
            .union(&catalog.owner_only);
        catalog.admin_class = catalog
            .all
            .difference(&carried_by(&|r| !r.counts_as_admin))
            .union(&catalog.owner_only);
        let mut category_ids = HashSet::new();
        for category in &file.notification_categories {
            let well_formed = !category.id.is_empty()
                && category
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !well_formed {
                return Err(CatalogError::MalformedCategory(category.id.clone()));
            }
            if !category_ids.insert(category.id.clone()) {
                return Err(CatalogError::DuplicateName(category.id.clone()));
            }
            let send_key = catalog
                .lookup(&category.send_key)
                .ok_or_else(|| CatalogError::UnknownSendKey {
                    category: category.id.clone(),
                    key: category.send_key.clone(),
                })?;
            catalog.notification_categories.push(NotificationCategory {
                id: category.id.clone(),
                name: category.name.clone(),
                description: category.description.clone(),
                send_key,
            });
        }
        Ok(catalog)
    }

    /// The notification category with this id.
    pub fn notification_category(&self, id: &str) -> Option<&NotificationCategory> {
        self.notification_categories.iter().find(|c| c.id == id)
    }

    fn match_pattern(&self, pattern: &str) -> KeySet {
        let (category, glob) = match pattern.split_once(':') {
            Some((category, glob)) => (Some(category), glob),
            None => (None, pattern),
        };
        self.keys
            .iter()
            .enumerate()
            .filter(|(_, k)| category.is_none_or(|c| k.category == c) && glob_matches(glob, &k.id))
            .map(|(i, _)| KeyIndex(i as u16))
            .collect()
    }

    /// Every key, in catalog order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn key(&self, index: KeyIndex) -> &Key {
        &self.keys[index.0 as usize]
    }

    pub fn lookup(&self, id: &str) -> Option<KeyIndex> {
        self.by_id.get(id).copied()
    }

    pub fn all_keys(&self) -> KeySet {
        self.all
    }

    pub fn owner_only_keys(&self) -> KeySet {
        self.owner_only
    }

    pub fn organization_wide_keys(&self) -> KeySet {
        self.organization_wide
    }

    /// Keys that no built-in role grantable by anyone carries (with the default catalog:
    /// `organization.*`, `billing.manage`, `roles.manage`, `keychains.manage`,
    /// `keychains.assign`, `service_accounts.manage`, `tokens.manage`). A role carrying one,
    /// built-in or custom, is granted and revoked by owners only.
    pub fn owner_granted_keys(&self) -> KeySet {
        self.owner_granted
    }

    /// Admin-class keys: those only the built-in roles counted as admins carry. Whoever holds
    /// one organization-wide, through any role of any name, counts against the plan's admin
    /// limit. This is the one definition; everything else asks it.
    pub fn admin_class_keys(&self) -> KeySet {
        self.admin_class
    }

    /// The smallest superset of `keys` closed under `implies`.
    pub fn close(&self, keys: &KeySet) -> KeySet {
        let mut out = KeySet::EMPTY;
        for key in keys.iter() {
            out.union_with(&self.closure[key.0 as usize]);
        }
        out
    }

    /// Whether holding `key` grants `other` (itself or through implications).
    pub fn implies(&self, key: KeyIndex, other: KeyIndex) -> bool {
        self.closure[key.0 as usize].contains(other)
    }

    /// Key ids of a set, in catalog order.
    pub fn names(&self, keys: &KeySet) -> Vec<String> {
        keys.iter().map(|k| self.key(k).id.clone()).collect()
    }

    pub fn role(&self, name: &str) -> Option<&BuiltInRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn keychain(&self, name: &str) -> Option<&BuiltInKeychain> {
        self.keychains.iter().find(|k| k.name == name)
    }
}

/// Transitive closure of `implies` per key; refuses cycles so that the data stays meaningful.
fn compute_closure(keys: &[Key]) -> Result<Vec<KeySet>, CatalogError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        keys: &[Key],
        marks: &mut [Mark],
        closure: &mut [KeySet],
        path: &mut Vec<usize>,
    ) -> Result<(), CatalogError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = path.iter().position(|p| *p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].iter().map(|p| keys[*p].id.as_str()).collect();
                cycle.push(&keys[i].id);
                return Err(CatalogError::Cycle(cycle.join(" -> ")));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        path.push(i);
        let mut set = KeySet::EMPTY;
        set.insert(KeyIndex(i as u16));
        for implied in &keys[i].implies {
            let j = implied.0 as usize;
            visit(j, keys, marks, closure, path)?;
            let sub = closure[j];
            set.union_with(&sub);
        }
        path.pop();
        marks[i] = Mark::Done;
        closure[i] = set;
        Ok(())
    }
    let mut marks = vec![Mark::New; keys.len()];
    let mut closure = vec![KeySet::EMPTY; keys.len()];
    let mut path = Vec::new();
    for i in 0..keys.len() {
        visit(i, keys, &mut marks, &mut closure, &mut path)?;
    }
    Ok(closure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(keys: &str) -> String {
        format!(
            r#"{{"keys": {keys}, "roles": [{{"name": "owner", "scope": "ORGANIZATION", "keychains": ["all"], "grantedBy": "OWNERS"}}], "keychains": [{{"name": "all", "keys": ["*"]}}]}}"#
        )
    }

    #[test]
    fn default_catalog_loads_with_built_in_roles() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.roles.len(), 8);
        let owner = catalog.role("owner").expect("owner");
        assert_eq!(owner.effective_keys, catalog.all_keys());
        let admin = catalog.role("admin").expect("admin");
        assert!(
            !admin
                .effective_keys
                .contains(catalog.lookup("organization.delete").expect("key"))
        );
        assert!(
            admin
                .effective_keys
                .contains(catalog.lookup("billing.manage").expect("key"))
        );
        let ws = catalog.role("workspace_admin").expect("workspace_admin");
        assert!(
            ws.effective_keys
                .contains(catalog.lookup("servers.manage").expect("key"))
        );
        assert!(!ws.effective_keys.contains(catalog.lookup("billing.read").expect("key")));
    }

    #[test]
    fn owner_granted_and_admin_class_keys_are_derived_from_the_built_in_roles() {
        let catalog = Catalog::builtin();
        assert_eq!(
            catalog.names(&catalog.owner_granted_keys()),
            [
                "organization.update",
                "organization.delete",
                "organization.transfer",
                "billing.manage",
                "roles.manage",
                "keychains.manage",
                "keychains.assign",
                "service_accounts.manage",
                "tokens.manage"
            ]
        );
        assert_eq!(
            catalog.names(&catalog.admin_class_keys()),
            [
                "organization.update",
                "organization.delete",
                "organization.transfer",
                "roles.manage",
                "keychains.manage",
                "keychains.assign",
                "service_accounts.manage",
                "tokens.manage"
            ]
        );
    }

    #[test]
    fn owner_only_keys_outside_the_owner_role_are_refused() {
        let text = r#"{"keys": [{"id": "org.delete", "category": "o", "ownerOnly": true}, {"id": "org.read", "category": "o"}],
            "keychains": [{"name": "all", "keys": ["*"]}],
            "roles": [{"name": "owner", "scope": "ORGANIZATION", "keychains": ["all"], "grantedBy": "OWNERS"},
                      {"name": "deputy", "scope": "ORGANIZATION", "keychains": ["all"], "grantedBy": "OWNERS"}]}"#;
        assert_eq!(
            Catalog::from_json(text).err(),
            Some(CatalogError::OwnerOnlyOutsideOwner {
                role: "deputy".to_owned(),
                key: "org.delete".to_owned()
            })
        );
    }

    #[test]
    fn implications_are_transitive() {
        let catalog = Catalog::builtin();
        let manage: KeySet = [catalog.lookup("servers.manage").expect("key")].into_iter().collect();
        let names = catalog.names(&catalog.close(&manage));
        assert_eq!(
            names,
            vec!["servers.read", "servers.manage", "ssh_keys.read", "ssh_keys.manage"]
        );
    }

    #[test]
    fn unknown_implied_key_is_refused() {
        let err = Catalog::from_json(&doc(r#"[{"id": "a.manage", "category": "x", "implies": ["a.read"]}]"#))
            .expect_err("refused");
        assert_eq!(
            err,
            CatalogError::UnknownImpliedKey {
                key: "a.manage".into(),
                implied: "a.read".into()
            }
        );
    }

    #[test]
    fn cycles_are_refused() {
        let err = Catalog::from_json(&doc(
            r#"[{"id": "a.one", "category": "x", "implies": ["a.two"]}, {"id": "a.two", "category": "x", "implies": ["a.one"]}]"#,
        ))
        .expect_err("refused");
        assert_eq!(err, CatalogError::Cycle("a.one -> a.two -> a.one".into()));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = Catalog::from_json(&doc(
            r#"[{"id": "a.one", "category": "x"}, {"id": "a.one", "category": "x"}]"#,
        ))
        .expect_err("refused");
        assert_eq!(err, CatalogError::DuplicateKey("a.one".into()));
    }
}
