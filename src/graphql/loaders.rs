//! DataLoaders, created fresh for every request: list fields batch their lookups into one
//! statement per kind instead of one per item, and nothing outlives the request.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::domain::DomainError;
use crate::store::entities::{organizations, roles, users, workspaces};

use super::error::ApiError;

macro_rules! by_id_loader {
    ($name:ident, $table:ident) => {
        #[doc = concat!("Loads `", stringify!($table), "` rows by id.")]
        pub struct $name(pub DatabaseConnection);

        impl Loader<Uuid> for $name {
            type Value = $table::Model;
            type Error = Arc<DbErr>;

            async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
                let rows = $table::Entity::find()
                    .filter($table::Column::Id.is_in(keys.to_vec()))
                    .all(&self.0)
                    .await
                    .map_err(Arc::new)?;
                Ok(rows.into_iter().map(|row| (row.id, row)).collect())
            }
        }
    };
}

by_id_loader!(UserLoader, users);
by_id_loader!(OrganizationLoader, organizations);
by_id_loader!(RoleLoader, roles);
by_id_loader!(WorkspaceLoader, workspaces);

/// The loaders of one request.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub organizations: DataLoader<OrganizationLoader>,
    pub roles: DataLoader<RoleLoader>,
    pub workspaces: DataLoader<WorkspaceLoader>,
}

impl Loaders {
    pub fn new(conn: &DatabaseConnection) -> Loaders {
        Loaders {
            users: DataLoader::new(UserLoader(conn.clone()), tokio::spawn),
            organizations: DataLoader::new(OrganizationLoader(conn.clone()), tokio::spawn),
            roles: DataLoader::new(RoleLoader(conn.clone()), tokio::spawn),
            workspaces: DataLoader::new(WorkspaceLoader(conn.clone()), tokio::spawn),
        }
    }
}

/// Loader failures are database failures: INTERNAL, detail logged.
pub fn loader_error(err: Arc<DbErr>) -> ApiError {
    ApiError(DomainError::Internal(format!("database: {err}")))
}

pub fn loaders<'a>(ctx: &async_graphql::Context<'a>) -> &'a Arc<Loaders> {
    ctx.data_unchecked::<Arc<Loaders>>()
}
