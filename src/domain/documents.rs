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
//! teams:
//!   - name: deployers            # unique in the organization, regardless of case
//!     description: ""
//!     roles:                     # the team's bindings: a role (of the document, the
//!       - role: release-manager  # organization or built-in) and a workspace slug, or none
//!         workspace: staging     # for organization-wide
//!     members: [ana@example.com] # people, by email; omit the list to leave members alone
//! ```
//! A team named in the document gets exactly the roles it lists; its members only when
//! `members` is given (service accounts in a team are never named here and stay as they are).
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
    /// `None` (no `teams` key): an import leaves teams alone, even in REPLACE mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<TeamEntry>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub roles: Vec<TeamRoleEntry>,
    /// People in the team, by email; `None`: left as they are on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TeamRoleEntry {
    pub role: String,
    /// A workspace's slug; `None` for organization-wide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// When the binding ends; `None` for one that lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
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

/// Builds the document of an organization, its teams (people's emails among them) included
/// only `with_teams` (for readers who may see members) and when it has any.
pub async fn export<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    with_teams: bool,
) -> DomainResult<Document> {
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
    let teams = if with_teams {
        Some(export_teams(conn, app, organization_id).await?).filter(|t| !t.is_empty())
    } else {
        None
    };
    Ok(Document {
        version: VERSION,
        keychains,
        roles,
        teams,
    })
}

/// The organization's teams with their bindings in force (by role name and workspace slug)
/// and their people (by email), sorted so equal teams export equally.
async fn export_teams<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Vec<TeamEntry>> {
    use crate::store::entities::{memberships, team_members, teams, users, workspaces};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(organization_id))
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|t| t.id).collect();
    let bindings = super::teams::bindings_of_teams(conn, app.now(), &ids).await?;
    let role_names: BTreeMap<Uuid, String> = definitions::roles_of(conn, organization_id)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let slugs: BTreeMap<Uuid, String> = workspaces::Entity::find()
        .filter(workspaces::Column::OrganizationId.eq(organization_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|w| (w.id, w.slug))
        .collect();
    let links = team_members::Entity::find()
        .filter(team_members::Column::TeamId.is_in(ids.clone()))
        .all(conn)
        .await?;
    let membership_users: BTreeMap<Uuid, Uuid> = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.id, m.user_id))
        .collect();
    let user_ids: Vec<Uuid> = links
        .iter()
        .filter_map(|l| membership_users.get(&l.membership_id).copied())
        .collect();
    let emails: BTreeMap<Uuid, String> = if user_ids.is_empty() {
        BTreeMap::new()
    } else {
        users::Entity::find()
            .filter(users::Column::Id.is_in(user_ids))
            .filter(users::Column::Kind.eq("HUMAN"))
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|u| u.email.map(|e| (u.id, e)))
            .collect()
    };
    let mut out: Vec<TeamEntry> = rows
        .iter()
        .map(|team| {
            let mut roles: Vec<TeamRoleEntry> = bindings
                .get(&team.id)
                .map(|list| {
                    list.iter()
                        .map(|b| TeamRoleEntry {
                            role: role_names.get(&b.role_id).cloned().unwrap_or_default(),
                            workspace: b.workspace_id.and_then(|w| slugs.get(&w).cloned()),
                            expires_at: b.expires_at,
                        })
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            let mut members: Vec<String> = links
                .iter()
                .filter(|l| l.team_id == team.id)
                .filter_map(|l| membership_users.get(&l.membership_id))
                .filter_map(|u| emails.get(u).cloned())
                .collect();
            members.sort();
            TeamEntry {
                name: team.name.clone(),
                description: team.description.clone(),
                roles,
                members: Some(members),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
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
    Team,
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
    for team in document.teams.iter().flatten() {
        if !names.insert(("team", team.name.trim().to_lowercase())) {
            return Err(DomainError::bad_input(
                "document",
                format!("team `{}` appears twice", team.name),
            ));
        }
        let mut bindings = BTreeSet::new();
        for binding in &team.roles {
            if !bindings.insert((binding.role.as_str(), binding.workspace.as_deref())) {
                return Err(DomainError::bad_input(
                    "document",
                    format!("team `{}` lists role `{}` twice at one scope", team.name, binding.role),
                ));
            }
        }
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
    if document.teams.is_some() {
        // A document naming teams names people: it takes the right to see them too.
        access.require(app, "teams.manage", None)?;
        access.require(app, "members.read", None)?;
    }
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
    let current = export(conn, app, organization.id, true).await?;
    let wanted_roles: BTreeSet<&str> = document.roles.iter().map(|r| r.name.as_str()).collect();
    let wanted_chains: BTreeSet<&str> = document.keychains.iter().map(|k| k.name.as_str()).collect();
    // Teams let go of what they no longer hold first, so that roles leaving with the document
    // are no longer in use when they go.
    let mut teams_changed = BTreeSet::new();
    release_teams(
        conn,
        app,
        meta,
        principal,
        access,
        organization,
        document,
        mode,
        &mut report,
        &mut teams_changed,
    )
    .await?;
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
    bind_teams(
        conn,
        app,
        meta,
        principal,
        access,
        organization,
        document,
        &current,
        &mut report,
        &mut teams_changed,
    )
    .await?;
    for entry in document.teams.iter().flatten() {
        let changed = teams_changed.contains(&entry.name.trim().to_lowercase());
        let created = report
            .created
            .iter()
            .any(|(k, n)| *k == ItemKind::Team && n == &entry.name);
        if created {
            continue;
        }
        if changed {
            report.updated.push((ItemKind::Team, entry.name.clone()));
        } else {
            report.unchanged.push((ItemKind::Team, entry.name.clone()));
        }
    }
    Ok(report)
}

/// Whether a team's binding is the one an entry names.
fn names_binding(
    entry: &TeamRoleEntry,
    binding: &crate::store::entities::team_role_bindings::Model,
    role_names: &BTreeMap<Uuid, String>,
    slugs: &BTreeMap<Uuid, String>,
) -> bool {
    role_names.get(&binding.role_id) == Some(&entry.role)
        && binding.workspace_id.and_then(|w| slugs.get(&w)) == entry.workspace.as_ref()
        && binding.expires_at == entry.expires_at
}

async fn workspace_slugs<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> DomainResult<BTreeMap<Uuid, String>> {
    use crate::store::entities::workspaces;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    Ok(workspaces::Entity::find()
        .filter(workspaces::Column::OrganizationId.eq(organization_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|w| (w.id, w.slug))
        .collect())
}

/// Before roles change: deletes the teams a REPLACE document does not name, and revokes from each
/// named team the bindings its entry does not list.
#[allow(clippy::too_many_arguments)]
async fn release_teams<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    document: &Document,
    mode: Mode,
    report: &mut ImportReport,
    changed: &mut BTreeSet<String>,
) -> DomainResult<()> {
    use crate::store::entities::{team_role_bindings, teams};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let Some(entries) = &document.teams else {
        return Ok(());
    };
    let rows = teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(organization.id))
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let wanted: BTreeMap<String, &TeamEntry> = entries.iter().map(|t| (t.name.trim().to_lowercase(), t)).collect();
    let role_rows = definitions::roles_of(conn, organization.id).await?;
    let role_names: BTreeMap<Uuid, String> = role_rows.iter().map(|r| (r.id, r.name.clone())).collect();
    let slugs = workspace_slugs(conn, organization.id).await?;
    for team in rows {
        match wanted.get(&team.name_canonical) {
            None if mode == Mode::Replace => {
                super::teams::delete_in(conn, app, meta, principal, access, organization, &team).await?;
                report.deleted.push((ItemKind::Team, team.name.clone()));
            }
            None => {}
            Some(entry) => {
                // Ended bindings are the sweeper's: an export leaves them out and they grant
                // nothing, so they are not revoked here.
                let held = team_role_bindings::Entity::find()
                    .filter(team_role_bindings::Column::TeamId.eq(team.id))
                    .filter(super::teams::in_force_at(app.now()))
                    .all(conn)
                    .await?;
                for binding in held {
                    if entry
                        .roles
                        .iter()
                        .any(|e| names_binding(e, &binding, &role_names, &slugs))
                    {
                        continue;
                    }
                    let Some(role) = role_rows.iter().find(|r| r.id == binding.role_id) else {
                        continue;
                    };
                    super::teams::revoke_role_in(
                        conn,
                        app,
                        meta,
                        principal,
                        access,
                        organization,
                        &team,
                        role,
                        binding.workspace_id,
                    )
                    .await?;
                    changed.insert(team.name_canonical.clone());
                }
            }
        }
    }
    Ok(())
}

/// After roles change: creates the teams the document names, sets their descriptions, grants
/// the bindings they list and, where `members` is given, makes their people exactly those.
#[allow(clippy::too_many_arguments)]
async fn bind_teams<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    document: &Document,
    current: &Document,
    report: &mut ImportReport,
    changed: &mut BTreeSet<String>,
) -> DomainResult<()> {
    use crate::store::entities::{memberships, team_members, team_role_bindings, teams, users};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let Some(entries) = &document.teams else {
        return Ok(());
    };
    let role_rows = definitions::roles_of(conn, organization.id).await?;
    let role_names: BTreeMap<Uuid, String> = role_rows.iter().map(|r| (r.id, r.name.clone())).collect();
    let slugs = workspace_slugs(conn, organization.id).await?;
    let people: BTreeMap<String, memberships::Model> = {
        let members = memberships::Entity::find()
            .filter(memberships::Column::OrganizationId.eq(organization.id))
            .all(conn)
            .await?;
        let user_rows: BTreeMap<Uuid, users::Model> = users::Entity::find()
            .filter(users::Column::Id.is_in(members.iter().map(|m| m.user_id).collect::<Vec<_>>()))
            .filter(users::Column::Kind.eq("HUMAN"))
            .all(conn)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        members
            .into_iter()
            .filter_map(|m| {
                let email = user_rows.get(&m.user_id)?.email_canonical.clone()?;
                Some((email, m))
            })
            .collect()
    };
    for entry in entries {
        let canonical = entry.name.trim().to_lowercase();
        let existing = teams::Entity::find()
            .filter(teams::Column::OrganizationId.eq(organization.id))
            .filter(teams::Column::NameCanonical.eq(canonical.clone()))
            .one(conn)
            .await?;
        let team = match existing {
            Some(team) => {
                let before = current
                    .teams
                    .iter()
                    .flatten()
                    .find(|t| t.name.trim().to_lowercase() == canonical);
                if before.is_none_or(|b| b.description != entry.description.trim() || b.name != entry.name.trim()) {
                    changed.insert(canonical.clone());
                }
                super::teams::update_in(
                    conn,
                    app,
                    meta,
                    principal,
                    access,
                    organization,
                    team,
                    Some(&entry.name),
                    Some(&entry.description),
                )
                .await?
            }
            None => {
                let team = super::teams::create_in(
                    conn,
                    app,
                    meta,
                    principal,
                    access,
                    organization,
                    &entry.name,
                    Some(&entry.description),
                )
                .await?;
                report.created.push((ItemKind::Team, entry.name.clone()));
                team
            }
        };
        // People listed: resolved first, so that leaving happens before any grant and joining
        // after, and the admin limit never counts someone the document takes out.
        let wanted_members = match &entry.members {
            None => None,
            Some(listed) => {
                let mut wanted = BTreeSet::new();
                for email in listed {
                    let key = super::validate::Email::canonical_of(email);
                    let membership = people.get(&key).ok_or_else(|| {
                        DomainError::bad_input(
                            "document",
                            format!("team `{}`: `{email}` is not a member of this organization", entry.name),
                        )
                    })?;
                    wanted.insert(membership.id);
                }
                Some(wanted)
            }
        };
        let in_team: BTreeSet<Uuid> = team_members::Entity::find()
            .filter(team_members::Column::TeamId.eq(team.id))
            .all(conn)
            .await?
            .into_iter()
            .map(|l| l.membership_id)
            .collect();
        if let Some(wanted) = &wanted_members {
            for membership in people
                .values()
                .filter(|m| in_team.contains(&m.id) && !wanted.contains(&m.id))
            {
                super::teams::remove_member_in(conn, app, meta, principal, access, organization, &team, membership)
                    .await?;
                changed.insert(canonical.clone());
            }
        }
        let held = team_role_bindings::Entity::find()
            .filter(team_role_bindings::Column::TeamId.eq(team.id))
            .filter(super::teams::in_force_at(app.now()))
            .all(conn)
            .await?;
        for wanted in &entry.roles {
            if held.iter().any(|b| names_binding(wanted, b, &role_names, &slugs)) {
                continue;
            }
            let role = role_rows
                .iter()
                .find(|r| r.organization_id.is_some() && r.name == wanted.role)
                .or_else(|| {
                    role_rows
                        .iter()
                        .find(|r| r.organization_id.is_none() && r.name == wanted.role)
                })
                .ok_or_else(|| {
                    DomainError::bad_input(
                        "document",
                        format!("team `{}`: unknown role `{}`", entry.name, wanted.role),
                    )
                })?;
            let workspace_id = match &wanted.workspace {
                None => None,
                Some(slug) => Some(
                    slugs
                        .iter()
                        .find(|(_, s)| *s == slug)
                        .map(|(id, _)| *id)
                        .ok_or_else(|| {
                            DomainError::bad_input(
                                "document",
                                format!("team `{}`: no workspace `{slug}` in this organization", entry.name),
                            )
                        })?,
                ),
            };
            let terms = super::bindings::Terms {
                expires_at: wanted.expires_at,
                reason: None,
                recovery: false,
            };
            super::teams::grant_role_in(
                conn,
                app,
                meta,
                principal,
                access,
                organization,
                &team,
                role,
                workspace_id,
                &terms,
            )
            .await?;
            changed.insert(canonical.clone());
        }
        if let Some(wanted) = &wanted_members {
            for membership in people
                .values()
                .filter(|m| wanted.contains(&m.id) && !in_team.contains(&m.id))
            {
                super::teams::add_member_in(conn, app, meta, principal, access, organization, &team, membership)
                    .await?;
                changed.insert(canonical.clone());
            }
        }
    }
    Ok(())
}
