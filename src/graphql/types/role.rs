//! Roles, and the kind shared with keychains.
use async_graphql::{Context, Enum, ID, Object};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::graphql::context::{app, charge};
use crate::graphql::error::{ApiError, ApiResult};
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{builtin_role_keychains, domain_loader_error, loader_error, loaders};
use crate::store::entities::roles;

use super::Keychain;

/// BUILT_IN roles and keychains are global and immutable; CUSTOM ones belong to an organization.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DefinitionKind {
    /// Part of the catalog, the same in every organization; it cannot be changed or deleted.
    BuiltIn,
    /// Created by one organization and belonging to it.
    Custom,
}

pub(super) fn kind_of(value: &str) -> DefinitionKind {
    if value == "BUILT_IN" {
        DefinitionKind::BuiltIn
    } else {
        DefinitionKind::Custom
    }
}

/// Where a role may be bound.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RoleScope {
    /// Only organization-wide.
    Organization,
    /// Only inside a workspace.
    Workspace,
    /// Organization-wide or inside a workspace.
    Any,
}

/// A named set of keychains and keys, seen from an organization (for `holderCount`).
pub struct Role(pub roles::Model, pub Option<Uuid>);

impl Role {
    /// A role seen from its own organization (custom) or from none (built-in).
    pub fn of(row: roles::Model) -> Role {
        let organization = row.organization_id;
        Role(row, organization)
    }

    /// The role a binding or an offer names, seen from the organization it is in.
    pub(crate) async fn load(ctx: &Context<'_>, role_id: Uuid, organization_id: Uuid) -> ApiResult<Role> {
        loaders(ctx)
            .roles
            .load_one(role_id)
            .await
            .map_err(loader_error)?
            .map(|r| Role(r, Some(organization_id)))
            .ok_or(ApiError(DomainError::NotFound("role")))
    }
}

/// A named set of keychains and direct keys that members are granted, organization-wide or
/// inside a workspace.
#[Object]
impl Role {
    /// The role's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Role, self.0.id)
    }

    /// The role's name, e.g. `admin`; a custom role's is unique in its organization.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the role is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Whether the role is built in or the organization's own.
    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    /// Where the role may be bound.
    async fn scope(&self) -> RoleScope {
        match self.0.scope.as_str() {
            "ORGANIZATION" => RoleScope::Organization,
            "WORKSPACE" => RoleScope::Workspace,
            _ => RoleScope::Any,
        }
    }

    /// Fewest members that must hold the role organization-wide (1 for `owner`); a revoke or
    /// removal below it fails with `LAST_OWNER`.
    async fn min_holders(&self) -> i32 {
        self.0.min_holders
    }

    /// `null` when only the plan limits it.
    async fn max_holders(&self) -> Option<i32> {
        self.0.max_holders
    }

    /// The keychains the role is made of.
    async fn keychains(&self, ctx: &Context<'_>) -> ApiResult<Vec<Keychain>> {
        // A built-in role's keychains are fixed by the catalog: no loader round trip.
        if let Some(list) = builtin_role_keychains(app(ctx), &self.0.id) {
            return Ok(list.iter().cloned().map(Keychain).collect());
        }
        let rows = loaders(ctx)
            .role_keychains
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        charge(ctx, rows.len())?;
        Ok(rows.into_iter().map(Keychain).collect())
    }

    /// Keys granted directly, besides those of its keychains.
    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            if app(ctx).builtins.role(&self.0.id).is_some() {
                return Ok(Vec::new());
            }
            Ok(loaders(ctx)
                .role_direct_keys
                .load_one(self.0.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default())
        })
        .await;
        result
    }

    /// Keys of its keychains and direct keys, closed under implication.
    async fn effective_keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            let keys = loaders(ctx)
                .role_keys
                .load_one(self.0.id)
                .await
                .map_err(domain_loader_error)?
                .unwrap_or_default();
            Ok(app(ctx).catalog.names(&keys))
        })
        .await;
        result
    }

    /// Members holding the role organization-wide in the organization it is seen from,
    /// themselves or through a team (each counted once); `null` without one (a built-in role
    /// looked up by id).
    async fn holder_count(&self, ctx: &Context<'_>) -> ApiResult<Option<i32>> {
        let result: ApiResult<Option<i32>> = Box::pin(async move {
            let Some(organization_id) = self.1 else { return Ok(None) };
            let count = loaders(ctx)
                .holder_counts
                .load_one((organization_id, self.0.id))
                .await
                .map_err(domain_loader_error)?
                .unwrap_or(0);
            Ok(Some(count as i32))
        })
        .await;
        result
    }
}
