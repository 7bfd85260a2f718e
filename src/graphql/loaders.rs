//! Loaders, created fresh for every request: list fields batch their lookups into one
//! statement per kind instead of one per item (see [`super::batch`]), and nothing outlives the
//! request.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::domain::access::{self, MemberAccess};
use crate::domain::page::{Page, PageRequest};
use crate::domain::{App, DomainError, Principal, organizations as organization_service};
use crate::store::entities::{
    keychains, memberships, organizations, role_bindings, role_keychains, roles, team_role_bindings, teams, users,
    workspaces,
};

use super::batch::{BatchLoader, Batcher};
use super::error::ApiError;
use crate::store::{Shared, WriteClock};

macro_rules! by_id_loader {
    ($name:ident, $table:ident) => {
        by_id_loader!($name, $table, $table::Model, |row| row);
    };
    ($name:ident, $table:ident, $value:ty, $wrap:expr) => {
        #[doc = concat!("Loads `", stringify!($table), "` rows by id.")]
        pub struct $name(pub DatabaseConnection);

        impl Loader<Uuid> for $name {
            type Value = $value;
            type Error = Arc<DbErr>;

            async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
                let rows = $table::Entity::find()
                    .filter($table::Column::Id.is_in(keys.to_vec()))
                    .all(&self.0)
                    .await
                    .map_err(Arc::new)?;
                Ok(rows.into_iter().map(|row| (row.id, ($wrap)(row))).collect())
            }
        }
    };
}

// Users are shared as they are: a listed member's user is not copied.
by_id_loader!(UserLoader, users, Arc<users::Model>, Arc::new);
by_id_loader!(OrganizationLoader, organizations);
by_id_loader!(RoleLoader, roles);
by_id_loader!(WorkspaceLoader, workspaces);
by_id_loader!(TeamLoader, teams);

/// The loaders of one request.
pub struct Loaders {
    pub users: BatchLoader<Uuid, UserLoader>,
    pub organizations: BatchLoader<Uuid, OrganizationLoader>,
    pub roles: BatchLoader<Uuid, RoleLoader>,
    pub workspaces: BatchLoader<Uuid, WorkspaceLoader>,
    pub access: BatchLoader<Uuid, AccessLoader>,
    /// Whether the caller may see each user (`domain::members::visible_users`).
    pub visible_users: BatchLoader<Uuid, VisibleUsersLoader>,
    pub role_bindings: BatchLoader<Uuid, RoleBindingsLoader>,
    pub role_keychains: BatchLoader<Uuid, RoleKeychainsLoader>,
    pub role_keys: BatchLoader<Uuid, RoleKeysLoader>,
    pub role_direct_keys: BatchLoader<Uuid, RoleDirectKeysLoader>,
    pub keychain_keys: BatchLoader<Uuid, KeychainKeysLoader>,
    pub holder_counts: BatchLoader<(Uuid, Uuid), HolderCountLoader>,
    pub keychain_roles: BatchLoader<Uuid, KeychainRolesLoader>,
    pub member_pages: BatchLoader<MemberPageKey, MemberPagesLoader>,
    pub member_counts: BatchLoader<Uuid, MemberCountLoader>,
    pub organizations_by_slug: BatchLoader<String, OrganizationSlugLoader>,
    pub member_organizations: BatchLoader<MemberOrganizationsKey, MemberOrganizationsLoader>,
    pub member_organization_counts: BatchLoader<(Uuid, Option<Uuid>), MemberOrganizationCountLoader>,
    /// Per membership: the bindings held through teams, with the team of each.
    pub team_bindings: BatchLoader<Uuid, TeamBindingsLoader>,
    /// Per membership: the teams it is in.
    pub member_teams: BatchLoader<Uuid, MemberTeamsLoader>,
    /// Per team: its bindings in force.
    pub bindings_of_team: BatchLoader<Uuid, BindingsOfTeamLoader>,
    pub team_member_counts: BatchLoader<Uuid, TeamMemberCountLoader>,
    pub teams: BatchLoader<Uuid, TeamLoader>,
}

/// Rows every request may reuse while the database is unchanged (see [`Shared`]), one store
/// per kind; bounded so that a large installation keeps only a working set.
pub struct SharedLoads {
    users: Arc<Shared<Uuid, Arc<users::Model>>>,
    organizations: Arc<Shared<Uuid, organizations::Model>>,
    roles: Arc<Shared<Uuid, roles::Model>>,
    workspaces: Arc<Shared<Uuid, workspaces::Model>>,
    role_bindings: Arc<Shared<Uuid, <RoleBindingsLoader as Loader<Uuid>>::Value>>,
    role_keychains: Arc<Shared<Uuid, Vec<Arc<keychains::Model>>>>,
    member_pages: Arc<Shared<MemberPageKey, Arc<Vec<memberships::Model>>>>,
    member_counts: Arc<Shared<Uuid, u64>>,
    organizations_by_slug: Arc<Shared<String, organizations::Model>>,
    member_organizations: Arc<Shared<MemberOrganizationsKey, Page<organizations::Model>>>,
    member_organization_counts: Arc<Shared<(Uuid, Option<Uuid>), u64>>,
}

impl SharedLoads {
    /// The stores of one process; with `share` false they keep nothing, and every request reads
    /// its rows afresh.
    pub fn new(share: bool, writes: &Arc<WriteClock>, metrics: &crate::metrics::Metrics) -> SharedLoads {
        let kept = Kept { share, writes, metrics };
        SharedLoads {
            users: kept.cache("users", 20_000),
            organizations: kept.cache("organizations", 5_000),
            roles: kept.cache("roles", 5_000),
            workspaces: kept.cache("workspaces", 5_000),
            role_bindings: kept.cache("role_bindings", 20_000),
            role_keychains: kept.cache("role_keychains", 5_000),
            // Pages of up to 101 rows each.
            member_pages: kept.cache("member_pages", 1_000),
            member_counts: kept.cache("member_counts", 10_000),
            organizations_by_slug: kept.cache("organizations_by_slug", 5_000),
            member_organizations: kept.cache("member_organizations", 2_000),
            member_organization_counts: kept.cache("member_organization_counts", 10_000),
        }
    }
}

/// Makes the shared stores of one process, each counted under its name.
struct Kept<'a> {
    share: bool,
    writes: &'a Arc<WriteClock>,
    metrics: &'a crate::metrics::Metrics,
}

impl Kept<'_> {
    fn cache<K: Eq + std::hash::Hash + Clone, V: Clone>(
        &self,
        name: &'static str,
        capacity: usize,
    ) -> Arc<Shared<K, V>> {
        let capacity = if self.share { capacity } else { 0 };
        Arc::new(Shared::counted(self.writes, capacity, self.metrics.cache(name)))
    }
}

impl Loaders {
    /// Loaders whose batches `batcher` collects; the request's execution must run under
    /// [`super::batch::drive`] with the same batcher.
    pub fn new(app: &Arc<App>, principal: Option<Principal>, batcher: &Arc<Batcher>, shared: &SharedLoads) -> Loaders {
        let conn = &app.store.conn;
        let clock = &app.store.writes;
        Loaders {
            users: BatchLoader::sharing(UserLoader(conn.clone()), batcher, clock, &shared.users),
            organizations: BatchLoader::sharing(
                OrganizationLoader(conn.clone()),
                batcher,
                clock,
                &shared.organizations,
            ),
            roles: BatchLoader::sharing(RoleLoader(conn.clone()), batcher, clock, &shared.roles),
            workspaces: BatchLoader::sharing(WorkspaceLoader(conn.clone()), batcher, clock, &shared.workspaces),
            // The caller's access has its own cache across requests (`domain::standing`).
            access: BatchLoader::new(
                AccessLoader {
                    app: app.clone(),
                    principal: principal.clone(),
                },
                batcher,
                clock,
            ),
            visible_users: BatchLoader::new(
                VisibleUsersLoader {
                    app: app.clone(),
                    principal: principal.clone(),
                },
                batcher,
                clock,
            ),
            role_bindings: BatchLoader::sharing(
                RoleBindingsLoader(conn.clone()),
                batcher,
                clock,
                &shared.role_bindings,
            ),
            role_keychains: BatchLoader::sharing(
                RoleKeychainsLoader(app.clone()),
                batcher,
                clock,
                &shared.role_keychains,
            ),
            role_keys: BatchLoader::new(RoleKeysLoader(app.clone()), batcher, clock),
            role_direct_keys: BatchLoader::new(RoleDirectKeysLoader(conn.clone()), batcher, clock),
            keychain_keys: BatchLoader::new(KeychainKeysLoader(app.clone()), batcher, clock),
            holder_counts: BatchLoader::new(HolderCountLoader(app.clone()), batcher, clock),
            keychain_roles: BatchLoader::new(KeychainRolesLoader(app.clone()), batcher, clock),
            member_pages: BatchLoader::sharing(MemberPagesLoader(conn.clone()), batcher, clock, &shared.member_pages),
            member_counts: BatchLoader::sharing(MemberCountLoader(conn.clone()), batcher, clock, &shared.member_counts),
            organizations_by_slug: BatchLoader::sharing(
                OrganizationSlugLoader(conn.clone()),
                batcher,
                clock,
                &shared.organizations_by_slug,
            ),
            member_organizations: BatchLoader::sharing(
                MemberOrganizationsLoader(app.clone()),
                batcher,
                clock,
                &shared.member_organizations,
            ),
            member_organization_counts: BatchLoader::sharing(
                MemberOrganizationCountLoader(app.clone()),
                batcher,
                clock,
                &shared.member_organization_counts,
            ),
            team_bindings: BatchLoader::new(TeamBindingsLoader(conn.clone()), batcher, clock),
            member_teams: BatchLoader::new(MemberTeamsLoader(conn.clone()), batcher, clock),
            bindings_of_team: BatchLoader::new(BindingsOfTeamLoader(app.clone()), batcher, clock),
            team_member_counts: BatchLoader::new(TeamMemberCountLoader(conn.clone()), batcher, clock),
            teams: BatchLoader::new(TeamLoader(conn.clone()), batcher, clock),
        }
    }
}

/// Bindings each membership holds through its teams, as (team id, binding shaped as the
/// member's), in one statement for a whole page.
pub struct TeamBindingsLoader(pub DatabaseConnection);

impl Loader<Uuid> for TeamBindingsLoader {
    type Value = Arc<Vec<(Uuid, role_bindings::Model)>>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = crate::domain::teams::held_through_teams(&self.0, keys)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<Uuid, Vec<(Uuid, role_bindings::Model)>> = HashMap::new();
        for (team, binding) in rows {
            out.entry(binding.membership_id).or_default().push((team, binding));
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// The teams of each membership.
pub struct MemberTeamsLoader(pub DatabaseConnection);

impl Loader<Uuid> for MemberTeamsLoader {
    type Value = Vec<teams::Model>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::domain::teams::teams_of_members(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The bindings in force of each team.
pub struct BindingsOfTeamLoader(pub Arc<App>);

impl Loader<Uuid> for BindingsOfTeamLoader {
    type Value = Vec<team_role_bindings::Model>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::domain::teams::bindings_of_teams(&self.0.store.conn, self.0.now(), keys)
            .await
            .map_err(Arc::new)
    }
}

/// How many members each team has.
pub struct TeamMemberCountLoader(pub DatabaseConnection);

impl Loader<Uuid> for TeamMemberCountLoader {
    type Value = u64;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::domain::teams::member_counts(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Loader failures are database failures: UNAVAILABLE when the database is out of reach, else
/// INTERNAL; the detail is logged.
pub fn loader_error(err: Arc<DbErr>) -> ApiError {
    ApiError(DomainError::from(err.as_ref()))
}

pub fn loaders<'a>(ctx: &async_graphql::Context<'a>) -> &'a Arc<Loaders> {
    ctx.data_unchecked::<Arc<Loaders>>()
}

/// Loader failures carrying a domain error.
pub fn domain_loader_error(err: Arc<DomainError>) -> ApiError {
    ApiError((*err).clone())
}

/// The caller's access per organization, many organizations in one batch.
pub struct AccessLoader {
    pub app: Arc<App>,
    pub principal: Option<Principal>,
}

impl Loader<Uuid> for AccessLoader {
    type Value = Arc<MemberAccess>;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let Some(principal) = &self.principal else {
            return Ok(HashMap::new());
        };
        access::for_principal_many(&self.app, principal, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The users the caller may see, of those asked for (`true` for each one).
pub struct VisibleUsersLoader {
    pub app: Arc<App>,
    pub principal: Option<Principal>,
}

impl Loader<Uuid> for VisibleUsersLoader {
    type Value = bool;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let Some(principal) = &self.principal else {
            return Ok(HashMap::new());
        };
        let visible = crate::domain::members::visible_users(&self.app, principal, keys)
            .await
            .map_err(Arc::new)?;
        Ok(visible.into_iter().map(|user| (user, true)).collect())
    }
}

/// Effective keys of roles (built-in from the catalog; custom ones in at most three statements
/// for the whole batch), so that per-row key fields of a long list cost no statement per row.
pub struct RoleKeysLoader(pub Arc<App>);

impl Loader<Uuid> for RoleKeysLoader {
    type Value = crate::authz::KeySet;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        access::role_key_sets(&self.0.store.conn, &self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Direct keys of custom roles, sorted, in one statement for the batch.
pub struct RoleDirectKeysLoader(pub DatabaseConnection);

impl Loader<Uuid> for RoleDirectKeysLoader {
    type Value = Vec<String>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut out: HashMap<Uuid, Vec<String>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        let rows = crate::store::entities::role_keys::Entity::find()
            .filter(crate::store::entities::role_keys::Column::RoleId.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        for row in rows {
            if let Some(list) = out.get_mut(&row.role_id) {
                list.push(row.key);
            }
        }
        for list in out.values_mut() {
            list.sort();
        }
        Ok(out)
    }
}

/// Listed keys of keychains (built-in from the catalog, custom in one statement for the batch).
pub struct KeychainKeysLoader(pub Arc<App>);

impl Loader<Uuid> for KeychainKeysLoader {
    type Value = crate::authz::KeySet;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        access::keychain_key_sets(&self.0.store.conn, &self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Roles using each keychain (built-in roles from the catalog, custom ones through their links),
/// in two statements for the batch, ordered as roles are listed.
pub struct KeychainRolesLoader(pub Arc<App>);

impl Loader<Uuid> for KeychainRolesLoader {
    type Value = Vec<roles::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let app = &self.0;
        let links = role_keychains::Entity::find()
            .filter(role_keychains::Column::KeychainId.is_in(keys.to_vec()))
            .all(&app.store.conn)
            .await
            .map_err(Arc::new)?;
        let mut wanted: HashMap<Uuid, Vec<Uuid>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for link in links {
            if let Some(list) = wanted.get_mut(&link.keychain_id) {
                list.push(link.role_id);
            }
        }
        for (keychain, list) in wanted.iter_mut() {
            if let Some(i) = app.builtins.keychain(keychain) {
                list.extend(
                    app.catalog
                        .roles
                        .iter()
                        .filter(|r| r.keychains.contains(&i))
                        .map(|r| crate::domain::builtins::role_id(&r.name)),
                );
            }
        }
        let mut ids: Vec<Uuid> = wanted.values().flatten().copied().collect();
        ids.sort();
        ids.dedup();
        let rows: HashMap<Uuid, roles::Model> = roles::Entity::find()
            .filter(roles::Column::Id.is_in(ids))
            .order_by_asc(roles::Column::Position)
            .order_by_asc(roles::Column::Name)
            .all(&app.store.conn)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        Ok(wanted
            .into_iter()
            .map(|(keychain, ids)| {
                let mut list: Vec<roles::Model> = ids.iter().filter_map(|id| rows.get(id).cloned()).collect();
                list.sort_by(|a, b| (a.position, &a.name).cmp(&(b.position, &b.name)));
                list.dedup_by_key(|r| r.id);
                (keychain, list)
            })
            .collect())
    }
}

/// Members holding each role organization-wide, per (organization, role): one statement per
/// organization in the batch, however many roles are asked about.
pub struct HolderCountLoader(pub Arc<App>);

impl Loader<(Uuid, Uuid)> for HolderCountLoader {
    type Value = u64;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let mut by_organization: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (organization, role) in keys {
            by_organization.entry(*organization).or_default().push(*role);
        }
        let mut out = HashMap::new();
        for (organization, roles) in by_organization {
            let counts = crate::domain::bindings::holder_counts(&self.0.store.conn, organization, &roles, self.0.now())
                .await
                .map_err(Arc::new)?;
            for role in roles {
                out.insert((organization, role), counts.get(&role).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

/// Role bindings per membership, each with its role, in one joined statement.
/// A member's role bindings, each with its role.
pub type MemberBindings = Arc<Vec<(role_bindings::Model, Option<roles::Model>)>>;

pub struct RoleBindingsLoader(pub DatabaseConnection);

impl Loader<Uuid> for RoleBindingsLoader {
    type Value = MemberBindings;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = role_bindings::Entity::find()
            .find_also_related(roles::Entity)
            .filter(role_bindings::Column::MembershipId.is_in(keys.to_vec()))
            .order_by_asc(role_bindings::Column::Id)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut lists: HashMap<Uuid, Vec<(role_bindings::Model, Option<roles::Model>)>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (binding, role) in rows {
            lists.entry(binding.membership_id).or_default().push((binding, role));
        }
        let out: HashMap<Uuid, Self::Value> = lists.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(out)
    }
}

/// Keychains per role: built-in roles from the catalog, custom roles in one joined statement.
pub struct RoleKeychainsLoader(pub Arc<App>);

impl Loader<Uuid> for RoleKeychainsLoader {
    type Value = Vec<Arc<keychains::Model>>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let app = &self.0;
        let mut out: HashMap<Uuid, Self::Value> = HashMap::new();
        let mut custom = Vec::new();
        for role in keys {
            match builtin_role_keychains(app, role) {
                Some(list) => {
                    out.insert(*role, list.to_vec());
                }
                None => {
                    out.insert(*role, Vec::new());
                    custom.push(*role);
                }
            }
        }
        if custom.is_empty() {
            return Ok(out);
        }
        // Custom roles' keychains come with their links in one joined statement; a built-in
        // keychain among them comes from the catalog's rows.
        let rows = role_keychains::Entity::find()
            .find_also_related(keychains::Entity)
            .filter(role_keychains::Column::RoleId.is_in(custom))
            .all(&app.store.conn)
            .await
            .map_err(Arc::new)?;
        for (link, chain) in rows {
            let chain = chain.or_else(|| {
                app.builtin_keychain_rows()
                    .iter()
                    .find(|row| row.id == link.keychain_id)
                    .cloned()
            });
            let chain = chain.map(Arc::new);
            if let (Some(list), Some(chain)) = (out.get_mut(&link.role_id), chain) {
                list.push(chain);
            }
        }
        for list in out.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }
}

/// A built-in role's keychains, by name, straight from the catalog's rows (no statement, no
/// loader round trip); `None` for a custom role.
pub fn builtin_role_keychains<'a>(app: &'a App, role_id: &Uuid) -> Option<&'a [Arc<keychains::Model>]> {
    app.builtins.role_keychain_rows(role_id)
}

/// A page of an organization's members: (organization, after which membership, rows to fetch).
pub type MemberPageKey = (Uuid, Option<Uuid>, u64);

/// Pages of members of many organizations in one statement: a `UNION ALL` of one limited,
/// index-ordered select per page asked for, so each reads only the rows it returns (however
/// large the organization, and however deep the page).
pub struct MemberPagesLoader(pub DatabaseConnection);

/// Pages per statement (SQLite allows 500 terms in a compound select).
const PAGES_PER_STATEMENT: usize = 200;

impl Loader<MemberPageKey> for MemberPagesLoader {
    type Value = Arc<Vec<memberships::Model>>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[MemberPageKey]) -> Result<HashMap<MemberPageKey, Self::Value>, Self::Error> {
        let backend = self.0.get_database_backend();
        // The most rows any key wants of each (organization, cursor).
        let mut wanted: HashMap<(Uuid, Option<Uuid>), u64> = HashMap::new();
        for (organization_id, after, limit) in keys {
            let most = wanted.entry((*organization_id, *after)).or_default();
            *most = (*most).max(*limit);
        }
        let wanted: Vec<((Uuid, Option<Uuid>), u64)> = wanted.into_iter().collect();
        let mut by_organization: HashMap<Uuid, Vec<memberships::Model>> = HashMap::new();
        for chunk in wanted.chunks(PAGES_PER_STATEMENT) {
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 3);
            let mut parts = Vec::with_capacity(chunk.len());
            let placeholder = |values: &mut Vec<sea_orm::Value>, value: sea_orm::Value| {
                values.push(value);
                match backend {
                    sea_orm::DbBackend::Postgres => format!("${}", values.len()),
                    _ => "?".to_owned(),
                }
            };
            for ((organization_id, after), limit) in chunk {
                let org = placeholder(&mut values, (*organization_id).into());
                let cursor = match after {
                    Some(after) => format!(" AND id > {}", placeholder(&mut values, (*after).into())),
                    None => String::new(),
                };
                let lim = placeholder(&mut values, (*limit as i64).into());
                parts.push(format!(
                    "SELECT * FROM (SELECT id, organization_id, user_id, created_at FROM memberships \
                     WHERE organization_id = {org}{cursor} ORDER BY id LIMIT {lim}) AS page{}",
                    parts.len()
                ));
            }
            let rows = memberships::Entity::find()
                .from_raw_sql(sea_orm::Statement::from_sql_and_values(
                    backend,
                    parts.join(" UNION ALL "),
                    values,
                ))
                .all(&self.0)
                .await
                .map_err(Arc::new)?;
            for row in rows {
                by_organization.entry(row.organization_id).or_default().push(row);
            }
        }
        // Pages of one organization may overlap; each is the first rows after its cursor.
        for rows in by_organization.values_mut() {
            rows.sort_by_key(|m| m.id);
            rows.dedup_by_key(|m| m.id);
        }
        Ok(keys
            .iter()
            .map(|(organization_id, after, limit)| {
                let rows = by_organization
                    .get(organization_id)
                    .map(|rows| {
                        rows.iter()
                            .filter(|m| after.is_none_or(|after| m.id > after))
                            .take(*limit as usize)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let rows = Arc::new(rows);
                ((*organization_id, *after, *limit), rows)
            })
            .collect())
    }
}

/// Member counts of many organizations in one grouped statement.
pub struct MemberCountLoader(pub DatabaseConnection);

impl Loader<Uuid> for MemberCountLoader {
    type Value = u64;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows: Vec<(Uuid, i64)> = memberships::Entity::find()
            .select_only()
            .column(memberships::Column::OrganizationId)
            .column_as(memberships::Column::Id.count(), "n")
            .filter(memberships::Column::OrganizationId.is_in(keys.to_vec()))
            .group_by(memberships::Column::OrganizationId)
            .into_tuple()
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<Uuid, u64> = keys.iter().map(|k| (*k, 0)).collect();
        for (org, n) in rows {
            out.insert(org, n as u64);
        }
        Ok(out)
    }
}

/// Organizations by slug, many in one statement, whoever asks: callers must check membership
/// before showing one.
pub struct OrganizationSlugLoader(pub DatabaseConnection);

impl Loader<String> for OrganizationSlugLoader {
    type Value = organizations::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = organizations::Entity::find()
            .filter(organizations::Column::Slug.is_in(keys.to_vec()))
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|row| (row.slug.clone(), row)).collect())
    }
}

/// A page of a user's organizations: (user, the one organization their token is limited to,
/// after which membership, how many).
pub type MemberOrganizationsKey = (Uuid, Option<Uuid>, Option<Uuid>, u64);

/// Pages of users' organizations; a request asks for its viewer's, so each key is one statement.
pub struct MemberOrganizationsLoader(pub Arc<App>);

impl Loader<MemberOrganizationsKey> for MemberOrganizationsLoader {
    type Value = Page<organizations::Model>;
    type Error = Arc<DomainError>;

    async fn load(
        &self,
        keys: &[MemberOrganizationsKey],
    ) -> Result<HashMap<MemberOrganizationsKey, Self::Value>, Self::Error> {
        let mut out = HashMap::with_capacity(keys.len());
        for key in keys {
            let (user, only, after, first) = *key;
            let page = organization_service::page_of_member(&self.0, user, only, PageRequest { first, after })
                .await
                .map_err(Arc::new)?;
            out.insert(*key, page);
        }
        Ok(out)
    }
}

/// How many organizations users belong to: (user, the one organization their token is limited to).
pub struct MemberOrganizationCountLoader(pub Arc<App>);

impl Loader<(Uuid, Option<Uuid>)> for MemberOrganizationCountLoader {
    type Value = u64;
    type Error = Arc<DomainError>;

    async fn load(&self, keys: &[(Uuid, Option<Uuid>)]) -> Result<HashMap<(Uuid, Option<Uuid>), u64>, Self::Error> {
        let mut out = HashMap::with_capacity(keys.len());
        for key in keys {
            let count = organization_service::count_of_member(&self.0, key.0, key.1)
                .await
                .map_err(Arc::new)?;
            out.insert(*key, count);
        }
        Ok(out)
    }
}
