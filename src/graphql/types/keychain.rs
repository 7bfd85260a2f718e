//! Keychains: named sets of keys.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use crate::graphql::context::{access, app, charge};
use crate::graphql::error::ApiResult;
use crate::graphql::ids::{self, NodeKind};
use crate::graphql::loaders::{domain_loader_error, loader_error, loaders};
use crate::store::entities::keychains;

use super::role::kind_of;
use super::{DefinitionKind, Role};

/// A named set of keys.
pub struct Keychain(pub Arc<keychains::Model>);

impl From<keychains::Model> for Keychain {
    fn from(row: keychains::Model) -> Keychain {
        Keychain(Arc::new(row))
    }
}

/// A named set of keys that roles are built from.
#[Object]
impl Keychain {
    /// The keychain's global ID.
    pub(crate) async fn id(&self) -> ID {
        ids::encode(NodeKind::Keychain, self.0.id)
    }

    /// The keychain's name; a custom keychain's is unique in its organization.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the keychain is for; may be empty.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Whether the keychain is built in or the organization's own.
    async fn kind(&self) -> DefinitionKind {
        kind_of(&self.0.kind)
    }

    /// The keys it holds, in catalog order.
    async fn keys(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let result: ApiResult<Vec<String>> = Box::pin(async move {
            let keys = loaders(ctx)
                .keychain_keys
                .load_one(self.0.id)
                .await
                .map_err(domain_loader_error)?
                .unwrap_or_default();
            Ok(app(ctx).catalog.names(&keys))
        })
        .await;
        result
    }

    /// Roles using this keychain: built-in ones, and custom ones of its organization.
    async fn roles(&self, ctx: &Context<'_>) -> ApiResult<Vec<Role>> {
        let result: ApiResult<Vec<Role>> = Box::pin(async move {
            let rows = loaders(ctx)
                .keychain_roles
                .load_one(self.0.id)
                .await
                .map_err(loader_error)?
                .unwrap_or_default();
            charge(ctx, rows.len())?;
            // A built-in keychain is shared: show only built-in roles and the viewer's own custom ones.
            let mut visible = Vec::new();
            for row in rows {
                match row.organization_id {
                    None => visible.push(Role::of(row)),
                    // Custom roles are read with `roles.read`, as everywhere else.
                    Some(org)
                        if access(ctx, org)
                            .await?
                            .is_some_and(|a| a.holds(app(ctx), "roles.read", None) == Some(true)) =>
                    {
                        visible.push(Role::of(row))
                    }
                    Some(_) => {}
                }
            }
            Ok(visible)
        })
        .await;
        result
    }
}
