//! Built-in roles and keychains live in the catalog; rows with the same stable ids exist in the
//! database so that bindings can reference them with foreign keys.
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use crate::authz::Catalog;
use crate::store::Store;
use crate::store::entities::{keychains, roles};

use super::error::DomainResult;

const NAMESPACE: Uuid = Uuid::from_u128(0x6775_696c_6468_616c_6c00_0000_0000_0001);

/// The stable id of a built-in role, the same in every installation.
pub fn role_id(name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("role:{name}").as_bytes())
}

/// The stable id of a built-in keychain.
pub fn keychain_id(name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("keychain:{name}").as_bytes())
}

/// Upserts the catalog's built-in roles and keychains. Idempotent and safe to run from several
/// processes at once.
pub async fn sync(store: &Store, catalog: &Catalog, now: chrono::DateTime<chrono::Utc>) -> DomainResult<()> {
    let chains: Vec<keychains::ActiveModel> = catalog
        .keychains
        .iter()
        .map(|k| keychains::ActiveModel {
            id: Set(keychain_id(&k.name)),
            organization_id: Set(None),
            kind: Set("BUILT_IN".to_owned()),
            name: Set(k.name.clone()),
            description: Set(k.description.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    if !chains.is_empty() {
        keychains::Entity::insert_many(chains)
            .on_conflict(
                OnConflict::column(keychains::Column::Id)
                    .update_columns([keychains::Column::Name, keychains::Column::Description])
                    .to_owned(),
            )
            .exec_without_returning(&store.conn)
            .await?;
    }
    let rows: Vec<roles::ActiveModel> = catalog
        .roles
        .iter()
        .enumerate()
        .map(|(position, r)| roles::ActiveModel {
            id: Set(role_id(&r.name)),
            organization_id: Set(None),
            kind: Set("BUILT_IN".to_owned()),
            name: Set(r.name.clone()),
            description: Set(r.description.clone()),
            scope: Set(r.scope.as_str().to_owned()),
            min_holders: Set(r.min_holders as i32),
            max_holders: Set(r.max_holders.map(|m| m as i32)),
            granted_by: Set(r.granted_by.as_str().to_owned()),
            position: Set(position as i32),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    if !rows.is_empty() {
        roles::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(roles::Column::Id)
                    .update_columns([
                        roles::Column::Name,
                        roles::Column::Description,
                        roles::Column::Scope,
                        roles::Column::MinHolders,
                        roles::Column::MaxHolders,
                        roles::Column::GrantedBy,
                        roles::Column::Position,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&store.conn)
            .await?;
    }
    Ok(())
}

/// Maps stable built-in ids to catalog positions.
#[derive(Debug, Default)]
pub struct Index {
    roles: std::collections::HashMap<Uuid, usize>,
    keychains: std::collections::HashMap<Uuid, usize>,
    /// Keychain ids of each built-in role, so that no request hashes names into ids.
    role_keychains: std::collections::HashMap<Uuid, Vec<Uuid>>,
    /// The built-in keychains as rows, built once from the catalog.
    pub keychain_rows: Vec<crate::store::entities::keychains::Model>,
    /// Each built-in role's keychains as rows, by name, built once.
    role_keychain_rows: std::collections::HashMap<Uuid, Vec<std::sync::Arc<crate::store::entities::keychains::Model>>>,
}

impl Index {
    pub fn new(catalog: &Catalog) -> Index {
        let mut index = Index {
            roles: catalog
                .roles
                .iter()
                .enumerate()
                .map(|(i, r)| (role_id(&r.name), i))
                .collect(),
            keychains: catalog
                .keychains
                .iter()
                .enumerate()
                .map(|(i, k)| (keychain_id(&k.name), i))
                .collect(),
            role_keychains: catalog
                .roles
                .iter()
                .map(|r| {
                    let chains = r
                        .keychains
                        .iter()
                        .map(|k| keychain_id(&catalog.keychains[*k].name))
                        .collect();
                    (role_id(&r.name), chains)
                })
                .collect(),
            keychain_rows: catalog
                .keychains
                .iter()
                .map(|k| crate::store::entities::keychains::Model {
                    id: keychain_id(&k.name),
                    organization_id: None,
                    kind: "BUILT_IN".to_owned(),
                    name: k.name.clone(),
                    description: k.description.clone(),
                    created_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    updated_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                })
                .collect(),
            role_keychain_rows: std::collections::HashMap::new(),
        };
        for (role, ids) in &index.role_keychains {
            let mut rows: Vec<_> = index
                .keychain_rows
                .iter()
                .filter(|row| ids.contains(&row.id))
                .map(|row| std::sync::Arc::new(row.clone()))
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            index.role_keychain_rows.insert(*role, rows);
        }
        index
    }

    /// A built-in role's keychains as rows, by name; `None` for a custom role.
    pub fn role_keychain_rows(
        &self,
        role_id: &Uuid,
    ) -> Option<&[std::sync::Arc<crate::store::entities::keychains::Model>]> {
        self.role_keychain_rows.get(role_id).map(Vec::as_slice)
    }

    /// Catalog position of a built-in role id.
    pub fn role(&self, id: &Uuid) -> Option<usize> {
        self.roles.get(id).copied()
    }

    /// Keychain ids of a built-in role; `None` for a custom role.
    pub fn role_keychains(&self, role_id: &Uuid) -> Option<&[Uuid]> {
        self.role_keychains.get(role_id).map(Vec::as_slice)
    }

    /// Catalog position of a built-in keychain id.
    pub fn keychain(&self, id: &Uuid) -> Option<usize> {
        self.keychains.get(id).copied()
    }
}
