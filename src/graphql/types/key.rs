//! Keys of the catalog, and the answer to an authorization check.
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use std::sync::Arc;

use uuid::Uuid;

use crate::graphql::context::app;
use crate::graphql::error::ApiResult;

use super::{Keychain, Membership, Role, RoleBinding, Team, Workspace};
use crate::graphql::loaders::{loader_error, loaders};

/// A capability of the key catalog.
pub struct Key(pub crate::authz::KeyIndex);

/// A capability of the key catalog, named `area.action` (e.g. `members.invite`). Roles and
/// keychains are made of keys.
#[Object]
impl Key {
    /// E.g. `members.invite`.
    async fn id(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).id.clone()
    }

    /// The group the key belongs to, e.g. `people` or `resources`.
    async fn category(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).category.clone()
    }

    /// What holding the key allows, in words.
    async fn description(&self, ctx: &Context<'_>) -> String {
        app(ctx).catalog.key(self.0).description.clone()
    }

    /// Only owners can hold it.
    async fn owner_only(&self, ctx: &Context<'_>) -> bool {
        app(ctx).catalog.key(self.0).owner_only
    }

    /// It cannot be granted inside a single workspace.
    async fn organization_wide(&self, ctx: &Context<'_>) -> bool {
        app(ctx).catalog.key(self.0).organization_wide
    }

    /// Keys it implies directly.
    async fn implies(&self, ctx: &Context<'_>) -> Vec<String> {
        let catalog = &app(ctx).catalog;
        catalog
            .key(self.0)
            .implies
            .iter()
            .map(|k| catalog.key(*k).id.clone())
            .collect()
    }
}

/// The answer to "may the caller use this key here?".
#[derive(SimpleObject)]
pub struct Authorization {
    /// Whether the caller holds the key there.
    pub allowed: bool,
    /// When the caller stops holding the key: the end of the last grant giving it when every
    /// such grant ends; `null` when some grant lasts until revoked (or the key is not held).
    pub until: Option<DateTime<Utc>>,
    /// Why, in words.
    pub reason: String,
    /// The bindings (and keychains) that allow it; empty when denied.
    pub grants: Vec<Grant>,
}

/// A key the viewer holds and until when.
#[derive(SimpleObject)]
pub struct HeldKey {
    /// The key, e.g. `members.invite`.
    pub key: String,
    /// When the viewer stops holding it: the latest end among the grants giving it; `null` when
    /// some grant giving it lasts until revoked.
    pub until: Option<DateTime<Utc>>,
}

/// One binding that grants a key, and through which keychain.
pub struct Grant(pub crate::domain::authorize::GrantSource, pub Uuid);

/// One of the caller's role bindings that grants the asked key, and through which keychain.
#[Object]
impl Grant {
    /// The role of the binding.
    async fn role(&self, ctx: &Context<'_>) -> ApiResult<Role> {
        Role::load(ctx, self.0.role_id, self.1).await
    }

    /// `null` for an organization-wide binding.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        Workspace::load(ctx, self.0.workspace_id).await
    }

    /// The keychain carrying the key; `null` when the role grants it directly.
    async fn keychain(&self, ctx: &Context<'_>) -> ApiResult<Option<Keychain>> {
        if let Some(row) = &self.0.keychain {
            return Ok(Some(Keychain::from(row.clone())));
        }
        let Some(id) = self.0.keychain_id else { return Ok(None) };
        let row = crate::domain::definitions::keychain_by_id(app(ctx), id).await?;
        Ok(row.map(Keychain::from))
    }

    /// The key the role holds: the asked key itself, or one implying it.
    async fn key(&self) -> &str {
        &self.0.via_key
    }

    /// From `key` to the asked key, each key implying the next directly; just `[key]` when the
    /// role holds the asked key itself.
    async fn implication(&self) -> &[String] {
        &self.0.implication
    }

    /// When this grant ends; `null` for one that lasts until revoked.
    async fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.binding.expires_at
    }

    /// The role binding that grants it.
    async fn role_binding(&self) -> RoleBinding {
        RoleBinding(self.0.binding.clone(), self.1, None, self.0.team_id)
    }

    /// The team through which the binding is held; `null` for a member's own binding.
    async fn team(&self, ctx: &Context<'_>) -> ApiResult<Option<Team>> {
        let Some(team_id) = self.0.team_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .teams
            .load_one(team_id)
            .await
            .map_err(loader_error)?
            .map(Team))
    }
}

/// The teams holding a key, read when asked for.
pub type TeamHolders = Arc<
    dyn Fn() -> futures_util::future::BoxFuture<
            'static,
            crate::domain::DomainResult<Vec<crate::domain::who_can::TeamHolder>>,
        > + Send
        + Sync,
>;

/// A page of the members and service accounts holding a key, and the teams holding it.
pub struct KeyHolderConnection {
    pub edges: Vec<KeyHolderEdge>,
    pub page_info: crate::graphql::connection::PageInfo,
    pub counter: crate::graphql::connection::Counter,
    pub teams: TeamHolders,
    pub organization_id: Uuid,
}

/// A page of the members and service accounts holding a key (their own bindings or their
/// teams'), and the teams holding it.
#[Object]
impl KeyHolderConnection {
    /// The items of this page, each with its cursor, in list order.
    async fn edges(&self) -> &[KeyHolderEdge] {
        &self.edges
    }

    /// The nodes of `edges`, for clients that need no cursors.
    async fn nodes(&self) -> Vec<&KeyHolder> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    /// Where this page sits in the list, and the cursor to continue from.
    async fn page_info(&self) -> &crate::graphql::connection::PageInfo {
        &self.page_info
    }

    /// Size of the whole list, not of this page.
    async fn total_count(&self) -> ApiResult<i64> {
        Ok((self.counter)().await? as i64)
    }

    /// Every team whose role bindings give the key there, oldest team first, each with its
    /// grants; the team's members are among the holders, their grants naming the team. Not
    /// paginated: an organization has at most its plan's team limit of them.
    async fn teams(&self, ctx: &Context<'_>) -> ApiResult<Vec<TeamKeyHolder>> {
        let teams = (self.teams)().await?;
        // Each team's grants are built too: the list costs what it holds.
        let grants: usize = teams.iter().map(|t| t.grants.len()).sum();
        crate::graphql::context::charge(ctx, teams.len() + grants)?;
        Ok(teams
            .into_iter()
            .map(|t| TeamKeyHolder(t, self.organization_id))
            .collect())
    }
}

/// An edge of a connection.
#[derive(SimpleObject)]
pub struct KeyHolderEdge {
    /// An opaque position in the list; pass it as `after` to get the items that follow.
    pub cursor: String,
    /// The item at this position.
    pub node: KeyHolder,
}

/// A team holding a key, with the grants that explain it.
pub struct TeamKeyHolder(pub crate::domain::who_can::TeamHolder, pub Uuid);

/// A team holding the asked key, and every one of its bindings through which it does.
#[Object]
impl TeamKeyHolder {
    /// The team; each of its members holds the key through it.
    async fn team(&self) -> Team {
        Team(self.0.team.clone())
    }

    /// Each binding of the team (and within it each keychain or direct key) that gives the
    /// key, oldest binding first.
    async fn grants(&self) -> Vec<Grant> {
        self.0.grants.iter().map(|g| Grant(g.clone(), self.1)).collect()
    }
}

/// A member or service account holding a key, with the grants that explain it.
pub struct KeyHolder(pub crate::domain::who_can::Holder, pub Uuid);

/// A member or service account holding the asked key, and every binding through which it does.
#[Object]
impl KeyHolder {
    /// The membership holding the key: a person's or a service account's.
    async fn membership(&self) -> Membership {
        Membership(self.0.membership.clone())
    }

    /// Each binding (and within it each keychain or direct key) that gives the key, oldest
    /// binding first.
    async fn grants(&self) -> Vec<Grant> {
        self.0.grants.iter().map(|g| Grant(g.clone(), self.1)).collect()
    }
}
