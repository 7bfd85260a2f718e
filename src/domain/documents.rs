//! The roles document: an organization's custom keychains and roles in a stable, documented
//! form (JSON or YAML), for export and for atomic import.
//!
//! ```yaml
//! version: 1
//! keychains:
//!   - name: deployers            # unique in the organization
//!     description: Ship to production
//!     keys: [servers.read, servers.power]
//! roles:
//!   - name: release-manager
//!     description: ""
//!     scope: ANY                 # ORGANIZATION, WORKSPACE or ANY
//!     keychains: [deployers]     # custom keychains of the document/organization, or built-in ones
//!     keys: [members.read]       # direct keys
//! ```
//! Lists are sorted by name and keys follow the catalog's order, so equal models export equally.
use std::collections::{BTreeMap, BTreeSet};

use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authz::RoleScope;

use super::access::{self, MemberAccess};
use super::definitions::{self, KeychainInput, RoleInput, parse_keys};
use super::error::{DomainError, DomainResult};
use super::organizations::{self, member_access};
use super::{App, Principal, RequestMeta};

pub const VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub version: u32,
    #[serde(default)]
    pub keychains: Vec<KeychainEntry>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeychainEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "any_scope")]
    pub scope: String,
    #[serde(default)]
    pub keychains: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
}

fn any_scope() -> String {
    "ANY".to_owned()
}

/// Builds the document of an organization.
pub async fn export<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Document> {
    let chains = definitions::keychains_of(conn, organization_id).await?;
    let chain_names: BTreeMap<Uuid, String> = chains.iter().map(|k| (k.id, k.name.clone())).collect();
    let custom_chains: Vec<_> = chains.into_iter().filter(|k| k.organization_id.is_some()).collect();
    let chain_keys =
        access::keychain_key_sets(conn, app, &custom_chains.iter().map(|k| k.id).collect::<Vec<_>>()).await?;
    let mut keychains: Vec<KeychainEntry> = custom_chains
        .iter()
        .map(|k| KeychainEntry {
            name: k.name.clone(),
            description: k.description.clone(),
            keys: app.catalog.names(&chain_keys.get(&k.id).copied().unwrap_or_default()),
        })
        .collect();
    keychains.sort_by(|a, b| a.name.cmp(&b.name));
    let custom_roles: Vec<_> = definitions::roles_of(conn, organization_id)
        .await?
        .into_iter()
        .filter(|r| r.organization_id.is_some())
        .collect();
    let defs = definitions::definitions_of(conn, app, &custom_roles.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
    let mut roles: Vec<RoleEntry> = custom_roles
        .iter()
        .map(|r| {
            let def = defs.get(&r.id);
            let mut chains: Vec<String> = def
                .map(|d| {
                    d.keychain_ids
                        .iter()
                        .filter_map(|id| chain_names.get(id).cloned())
                        .collect()
                })
                .unwrap_or_default();
            chains.sort();
            RoleEntry {
                name: r.name.clone(),
                description: r.description.clone(),
                scope: r.scope.clone(),
                keychains: chains,
                keys: def.map(|d| app.catalog.names(&d.keys)).unwrap_or_default(),
            }
        })
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Document {
        version: VERSION,
        keychains,
        roles,
    })
}

pub fn render(document: &Document, format: Format) -> DomainResult<String> {
    match format {
        Format::Json => serde_json::to_string_pretty(document).map_err(|e| DomainError::Internal(e.to_string())),
        Format::Yaml => serde_yaml::to_string(document).map_err(|e| DomainError::Internal(e.to_string())),
    }
}

pub fn parse(text: &str, format: Format) -> DomainResult<Document> {
    let document: Document = match format {
        Format::Json => serde_json::from_str(text)
            .map_err(|e| DomainError::bad_input("document", format!("not a valid JSON roles document: {e}")))?,
        Format::Yaml => serde_yaml::from_str(text)
            .map_err(|e| DomainError::bad_input("document", format!("not a valid YAML roles document: {e}")))?,
    };
    if document.version != VERSION {
        return Err(DomainError::bad_input(
            "document",
            format!(
                "unsupported document version {}; this server reads version {VERSION}",
                document.version
            ),
        ));
    }
    Ok(document)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Create and update what the document names; leave the rest.
    Merge,
    /// Make the organization's custom roles and keychains exactly the document's.
    Replace,
}

/// Names of what an import changed (or would change), by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<(ItemKind, String)>,
    pub updated: Vec<(ItemKind, String)>,
    pub deleted: Vec<(ItemKind, String)>,
    pub unchanged: Vec<(ItemKind, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemKind {
    Keychain,
    Role,
}

fn validate(app: &App, document: &Document) -> DomainResult<()> {
    let mut unknown = BTreeSet::new();
    let mut names = BTreeSet::new();
    for chain in &document.keychains {
        if !names.insert(("keychain", chain.name.clone())) {
            return Err(DomainError::bad_input(
                "document",
                format!("keychain `{}` appears twice", chain.name),
            ));
        }
        unknown.extend(chain.keys.iter().filter(|k| app.catalog.lookup(k).is_none()).cloned());
    }
    for role in &document.roles {
        if !names.insert(("role", role.name.clone())) {
            return Err(DomainError::bad_input(
                "document",
                format!("role `{}` appears twice", role.name),
            ));
        }
        if RoleScope::parse(&role.scope).is_none() {
            return Err(DomainError::bad_input(
                "document",
                format!(
                    "role `{}` has scope `{}`; use ORGANIZATION, WORKSPACE or ANY",
                    role.name, role.scope
                ),
            ));
        }
        unknown.extend(role.keys.iter().filter(|k| app.catalog.lookup(k).is_none()).cloned());
    }
    if !unknown.is_empty() {
        return Err(DomainError::bad_input(
            "document",
            format!("unknown keys: {}", unknown.into_iter().collect::<Vec<_>>().join(", ")),
        ));
    }
    Ok(())
}

/// Imports a document atomically; with `dry_run` every check runs and nothing is kept.
pub async fn import(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    document: &Document,
    mode: Mode,
    dry_run: bool,
) -> DomainResult<ImportReport> {
    validate(app, document)?;
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let access = member_access(&tx, app, principal, organization.id).await?;
    access.require(app, "roles.manage", None)?;
    access.require(app, "keychains.manage", None)?;
    let report = apply(&tx, app, meta, principal, &access, &organization, document, mode).await?;
    super::audit::record(
        &tx,
        meta,
        app.now(),
        super::audit::Event {
            organization_id: Some(organization.id),
            actor: super::organizations::actor_of(principal),
            action: "roles.import",
            target: Some(("Organization", organization.id)),
            details: serde_json::json!({
                "mode": format!("{mode:?}"),
                "created": report.created.len(),
                "updated": report.updated.len(),
                "deleted": report.deleted.len(),
                "unchanged": report.unchanged.len(),
            }),
        },
    )
    .await?;
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn apply<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    document: &Document,
    mode: Mode,
) -> DomainResult<ImportReport> {
    let mut report = ImportReport::default();
    let current = export(conn, app, organization.id).await?;
    let wanted_roles: BTreeSet<&str> = document.roles.iter().map(|r| r.name.as_str()).collect();
    let wanted_chains: BTreeSet<&str> = document.keychains.iter().map(|k| k.name.as_str()).collect();
    let role_rows = definitions::roles_of(conn, organization.id).await?;
    if mode == Mode::Replace {
        for role in role_rows
            .iter()
            .filter(|r| r.organization_id.is_some() && !wanted_roles.contains(r.name.as_str()))
        {
            definitions::delete_role_in(conn, app, meta, principal, access, role).await?;
            report.deleted.push((ItemKind::Role, role.name.clone()));
        }
    }
    let chain_rows = definitions::keychains_of(conn, organization.id).await?;
    for entry in &document.keychains {
        let existing = chain_rows
            .iter()
            .find(|k| k.organization_id.is_some() && k.name == entry.name);
        match existing {
            None => {
                definitions::create_keychain_in(
                    conn,
                    app,
                    meta,
                    principal,
                    access,
                    organization,
                    KeychainInput {
                        name: Some(entry.name.clone()),
                        description: Some(entry.description.clone()),
                        keys: Some(entry.keys.clone()),
                    },
                )
                .await?;
                report.created.push((ItemKind::Keychain, entry.name.clone()));
            }
            Some(row) => {
                let before = current.keychains.iter().find(|k| k.name == entry.name);
                let mut normalized = entry.clone();
                normalized.keys = app.catalog.names(&parse_keys(app, "document", &entry.keys)?);
                if before == Some(&normalized) {
                    report.unchanged.push((ItemKind::Keychain, entry.name.clone()));
                } else {
                    definitions::update_keychain_in(
                        conn,
                        app,
                        meta,
                        principal,
                        access,
                        row.clone(),
                        KeychainInput {
                            name: None,
                            description: Some(entry.description.clone()),
                            keys: Some(entry.keys.clone()),
                        },
                    )
                    .await?;
                    report.updated.push((ItemKind::Keychain, entry.name.clone()));
                }
            }
        }
    }
    // Keychain names now resolve to ids: the organization's own first, then built-in ones.
    let chain_rows = definitions::keychains_of(conn, organization.id).await?;
    let chain_id = |name: &str| -> DomainResult<Uuid> {
        chain_rows
            .iter()
            .find(|k| k.organization_id.is_some() && k.name == name)
            .or_else(|| {
                chain_rows
                    .iter()
                    .find(|k| k.organization_id.is_none() && k.name == name)
            })
            .map(|k| k.id)
            .ok_or_else(|| DomainError::bad_input("document", format!("unknown keychain `{name}`")))
    };
    for entry in &document.roles {
        let keychain_ids = entry
            .keychains
            .iter()
            .map(|n| chain_id(n))
            .collect::<DomainResult<Vec<_>>>()?;
        let input = RoleInput {
            name: Some(entry.name.clone()),
            description: Some(entry.description.clone()),
            keychain_ids: Some(keychain_ids),
            keys: Some(entry.keys.clone()),
            scope: RoleScope::parse(&entry.scope),
        };
        match role_rows
            .iter()
            .find(|r| r.organization_id.is_some() && r.name == entry.name)
        {
            None => {
                definitions::create_role_in(conn, app, meta, principal, access, organization, input).await?;
                report.created.push((ItemKind::Role, entry.name.clone()));
            }
            Some(row) => {
                let before = current.roles.iter().find(|r| r.name == entry.name);
                let mut normalized = entry.clone();
                normalized.keys = app.catalog.names(&parse_keys(app, "document", &entry.keys)?);
                normalized.keychains.sort();
                normalized.keychains.dedup();
                if before == Some(&normalized) {
                    report.unchanged.push((ItemKind::Role, entry.name.clone()));
                } else {
                    let input = RoleInput { name: None, ..input };
                    definitions::update_role_in(conn, app, meta, principal, access, row.clone(), input).await?;
                    report.updated.push((ItemKind::Role, entry.name.clone()));
                }
            }
        }
    }
    if mode == Mode::Replace {
        for chain in chain_rows
            .iter()
            .filter(|k| k.organization_id.is_some() && !wanted_chains.contains(k.name.as_str()))
        {
            definitions::delete_keychain_in(conn, app, meta, principal, access, chain).await?;
            report.deleted.push((ItemKind::Keychain, chain.name.clone()));
        }
    }
    Ok(report)
}
