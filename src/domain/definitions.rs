//! Custom roles and keychains of an organization, and which keychains a role uses. Creating or
//! editing one is an escalation path, so each may hold only keys its author holds (invariant 5).
use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

use crate::authz::{KeySet, RoleScope};
use crate::store::entities::{
    invitation_role_bindings, invitations, keychain_keys, keychains, role_bindings, role_keychains, role_keys, roles,
};

use super::access::{self, MemberAccess};
use super::audit::{self, Event};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::grant_rule::{self, DefinitionChange};
use super::limits::{self, Limit};
use super::organizations::{self, actor_of, member_access};
use super::validate::display_name;
use super::workspaces::description as parse_description;
use super::{App, Principal, RequestMeta, new_id};

/// Parses key ids, naming every unknown one in a single BAD_USER_INPUT.
pub fn parse_keys(app: &App, field: &str, keys: &[String]) -> DomainResult<KeySet> {
    let mut set = KeySet::EMPTY;
    let mut unknown = Vec::new();
    for key in keys {
        match app.catalog.lookup(key.trim()) {
            Some(index) => set.insert(index),
            None => unknown.push(key.clone()),
        }
    }
    if unknown.is_empty() {
        Ok(set)
    } else {
        Err(DomainError::bad_input(
            field,
            format!("unknown keys: {}", unknown.join(", ")),
        ))
    }
}

/// A role's or keychain's name as messages show it.
fn described(what: &str, name: &str) -> String {
    format!("the {what} `{name}`")
}

/// BAD_USER_INPUT unless a role's parts are free of owner-only keys, naming the field that
/// brought them: the direct keys, or the keychains.
async fn refuse_owner_only_parts<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    keys: &KeySet,
    keychain_ids: &[Uuid],
) -> DomainResult<()> {
    grant_rule::refuse_owner_only(app, "keys", &app.catalog.close(keys))?;
    let chains = effective(conn, app, &KeySet::EMPTY, keychain_ids).await?;
    grant_rule::refuse_owner_only(app, "keychainIds", &chains)
}

fn built_in_refused(what: &str) -> DomainError {
    DomainError::Forbidden {
        message: format!("built-in {what}s are part of the catalog and cannot be changed or deleted"),
        key: None,
    }
}

fn name_taken(what: &str) -> DomainError {
    DomainError::conflict(Some("name"), format!("a {what} with this name already exists"))
}

fn check_name(app: &App, what: &str, raw: &str) -> DomainResult<String> {
    let name = display_name("name", raw)?;
    let reserved = match what {
        "role" => app.catalog.role(&name).is_some(),
        _ => app.catalog.keychain(&name).is_some(),
    };
    if reserved {
        return Err(DomainError::conflict(
            Some("name"),
            format!("`{name}` is the name of a built-in {what}"),
        ));
    }
    Ok(name)
}

/// Keychains usable by roles of an organization: built-in ones and its own; NOT_FOUND otherwise.
async fn usable_keychains<C: ConnectionTrait>(
    conn: &C,
    organization_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<Vec<keychains::Model>> {
    let wanted: BTreeSet<Uuid> = ids.iter().copied().collect();
    let rows = keychains::Entity::find()
        .filter(keychains::Column::Id.is_in(wanted.iter().copied().collect::<Vec<_>>()))
        .all(conn)
        .await?;
    let usable: Vec<keychains::Model> = rows
        .into_iter()
        .filter(|k| k.organization_id.is_none() || k.organization_id == Some(organization_id))
        .collect();
    if usable.len() != wanted.len() {
        return Err(DomainError::NotFound("keychain"));
    }
    Ok(usable)
}

/// A role's direct keys and keychains as stored.
#[derive(Clone, Debug)]
pub struct RoleDefinition {
    pub keys: KeySet,
    pub keychain_ids: Vec<Uuid>,
}

async fn role_definition<C: ConnectionTrait>(conn: &C, role_id: Uuid, app: &App) -> DomainResult<RoleDefinition> {
    let keys = role_keys::Entity::find()
        .filter(role_keys::Column::RoleId.eq(role_id))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|k| app.catalog.lookup(&k.key))
        .collect();
    let keychain_ids = role_keychains::Entity::find()
        .filter(role_keychains::Column::RoleId.eq(role_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|l| l.keychain_id)
        .collect();
    Ok(RoleDefinition { keys, keychain_ids })
}

/// Effective keys of a definition: direct keys and keychain keys, closed under implication.
async fn effective<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    keys: &KeySet,
    keychain_ids: &[Uuid],
) -> DomainResult<KeySet> {
    let chains = access::keychain_key_sets(conn, app, keychain_ids).await?;
    let mut all = *keys;
    for set in chains.values() {
        all.union_with(set);
    }
    Ok(app.catalog.close(&all))
}

/// FORBIDDEN unless the editor holds every key the role has: changing or deleting it takes them
/// from (or gives them to) its holders. Returns the role's effective keys.
async fn require_every_key_of_role<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    editor: &MemberAccess,
    role: &roles::Model,
    current: &RoleDefinition,
) -> DomainResult<KeySet> {
    let keys = effective(conn, app, &current.keys, &current.keychain_ids).await?;
    require_every_key(app, editor, &described("role", &role.name), keys)?;
    Ok(keys)
}

/// FORBIDDEN unless the editor holds every key the keychain has. Returns them (closed).
async fn require_every_key_of_keychain<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    editor: &MemberAccess,
    keychain: &keychains::Model,
) -> DomainResult<KeySet> {
    let keys = keychain_keys_closed(conn, app, keychain.id).await?;
    require_every_key(app, editor, &described("keychain", &keychain.name), keys)?;
    Ok(keys)
}

fn require_every_key(app: &App, editor: &MemberAccess, what: &str, keys: KeySet) -> DomainResult<()> {
    grant_rule::check_definition_change(
        app,
        editor,
        what,
        &DefinitionChange {
            before: keys,
            after: KeySet::EMPTY,
            reaches_holders: false,
        },
    )
}

/// A keychain's keys, closed under implication.
async fn keychain_keys_closed<C: ConnectionTrait>(conn: &C, app: &App, keychain_id: Uuid) -> DomainResult<KeySet> {
    let sets = access::keychain_key_sets(conn, app, &[keychain_id]).await?;
    Ok(app.catalog.close(&sets.get(&keychain_id).copied().unwrap_or_default()))
}

async fn write_role_parts<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    role_id: Uuid,
    keys: &KeySet,
    keychain_ids: &[Uuid],
) -> DomainResult<()> {
    role_keys::Entity::delete_many()
        .filter(role_keys::Column::RoleId.eq(role_id))
        .exec(conn)
        .await?;
    role_keychains::Entity::delete_many()
        .filter(role_keychains::Column::RoleId.eq(role_id))
        .exec(conn)
        .await?;
    let key_rows: Vec<role_keys::ActiveModel> = keys
        .iter()
        .map(|k| role_keys::ActiveModel {
            role_id: Set(role_id),
            key: Set(app.catalog.key(k).id.clone()),
        })
        .collect();
    if !key_rows.is_empty() {
        role_keys::Entity::insert_many(key_rows)
            .exec_without_returning(conn)
            .await?;
    }
    let unique: BTreeSet<Uuid> = keychain_ids.iter().copied().collect();
    let chain_rows: Vec<role_keychains::ActiveModel> = unique
        .into_iter()
        .map(|k| role_keychains::ActiveModel {
            role_id: Set(role_id),
            keychain_id: Set(k),
        })
        .collect();
    if !chain_rows.is_empty() {
        role_keychains::Entity::insert_many(chain_rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

async fn write_keychain_keys<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    keychain_id: Uuid,
    keys: &KeySet,
) -> DomainResult<()> {
    keychain_keys::Entity::delete_many()
        .filter(keychain_keys::Column::KeychainId.eq(keychain_id))
        .exec(conn)
        .await?;
    let rows: Vec<keychain_keys::ActiveModel> = keys
        .iter()
        .map(|k| keychain_keys::ActiveModel {
            keychain_id: Set(keychain_id),
            key: Set(app.catalog.key(k).id.clone()),
        })
        .collect();
    if !rows.is_empty() {
        keychain_keys::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Input of createRole / updateRole.
pub struct RoleInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub keychain_ids: Option<Vec<Uuid>>,
    pub keys: Option<Vec<String>>,
    pub scope: Option<RoleScope>,
}

/// Creates a custom role (`roles.manage`; only keys the author holds; plan limit).
pub(crate) async fn create_role_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    input: RoleInput,
) -> DomainResult<roles::Model> {
    let name = check_name(app, "role", input.name.as_deref().unwrap_or_default())?;
    let description = parse_description(input.description.as_deref())?;
    let keys = parse_keys(app, "keys", input.keys.as_deref().unwrap_or_default())?;
    let keychain_ids = input.keychain_ids.unwrap_or_default();
    access.require(app, "roles.manage", None)?;
    usable_keychains(conn, organization.id, &keychain_ids).await?;
    refuse_owner_only_parts(conn, app, &keys, &keychain_ids).await?;
    let all = effective(conn, app, &keys, &keychain_ids).await?;
    grant_rule::check_definition_change(
        app,
        access,
        &described("role", &name),
        &DefinitionChange {
            before: KeySet::EMPTY,
            after: all,
            reaches_holders: false,
        },
    )?;
    limits::ensure_room(conn, app, organization.id, &organization.plan, Limit::CustomRoles, 1).await?;
    let now = app.now();
    let role = roles::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(Some(organization.id)),
        kind: Set("CUSTOM".to_owned()),
        name: Set(name),
        description: Set(description),
        scope: Set(input.scope.unwrap_or(RoleScope::Any).as_str().to_owned()),
        min_holders: Set(0),
        max_holders: Set(None),
        granted_by: Set("ANY".to_owned()),
        position: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            name_taken("role")
        } else {
            e.into()
        }
    })?;
    write_role_parts(conn, app, role.id, &keys, &keychain_ids).await?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "role.create",
            target: Some(("Role", role.id)),
            details: json!({ "name": role.name, "keys": app.catalog.names(&keys), "keychains": keychain_ids }),
        },
    )
    .await?;
    Ok(role)
}

pub async fn create_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    input: RoleInput,
) -> DomainResult<roles::Model> {
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let access = member_access(&tx, app, principal, organization.id).await?;
    let role = create_role_in(&tx, app, meta, principal, &access, &organization, input).await?;
    tx.commit().await?;
    Ok(role)
}

/// A role of the caller's organization for a change: NOT_FOUND outside it, refused if built-in.
async fn custom_role_for_change<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    role_id: Uuid,
) -> DomainResult<(roles::Model, crate::store::entities::organizations::Model, MemberAccess)> {
    let role = roles::Entity::find_by_id(role_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("role"))?;
    let Some(organization_id) = role.organization_id else {
        // Built-in roles are visible to everyone, so refusing them leaks nothing.
        return Err(built_in_refused("role"));
    };
    let organization = organizations::lock(conn, organization_id).await?;
    let access = access::for_principal(conn, app, principal, organization_id)
        .await?
        .ok_or(DomainError::NotFound("role"))?;
    Ok((role, organization, access))
}

pub(crate) async fn update_role_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    role: roles::Model,
    input: RoleInput,
) -> DomainResult<roles::Model> {
    let name = input.name.as_deref().map(|n| check_name(app, "role", n)).transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|d| parse_description(Some(d)))
        .transpose()?;
    let keys = input.keys.as_deref().map(|k| parse_keys(app, "keys", k)).transpose()?;
    access.require(app, "roles.manage", None)?;
    let organization_id = role.organization_id.ok_or_else(|| built_in_refused("role"))?;
    let current = role_definition(conn, role.id, app).await?;
    // Any change of a role (a rename, its scope) needs every key it holds, as its keys' change does.
    let before = require_every_key_of_role(conn, app, access, &role, &current).await?;
    let mut changes = serde_json::Map::new();
    if keys.is_some() || input.keychain_ids.is_some() {
        let new_keys = keys.unwrap_or(current.keys);
        let new_chains = input.keychain_ids.clone().unwrap_or(current.keychain_ids.clone());
        usable_keychains(conn, organization_id, &new_chains).await?;
        refuse_owner_only_parts(conn, app, &new_keys, &new_chains).await?;
        let after = effective(conn, app, &new_keys, &new_chains).await?;
        grant_rule::check_definition_change(
            app,
            access,
            &described("role", &role.name),
            &DefinitionChange {
                before,
                after,
                reaches_holders: grant_rule::roles_in_use(conn, app, &[role.id]).await?,
            },
        )?;
        let admins_before = grant_rule::admin_holders(conn, app, organization_id).await?.len();
        write_role_parts(conn, app, role.id, &new_keys, &new_chains).await?;
        grant_rule::ensure_admin_limit_after(conn, app, organization_id, admins_before).await?;
        changes.insert("keys".into(), json!(app.catalog.names(&new_keys)));
        changes.insert("keychains".into(), json!(new_chains));
    }
    let mut model = role.clone().into_active_model();
    if let Some(name) = name.filter(|n| *n != role.name) {
        changes.insert("name".into(), json!({ "from": role.name, "to": name }));
        model.name = Set(name);
    }
    if let Some(description) = description.filter(|d| *d != role.description) {
        changes.insert("description".into(), json!({ "changed": true }));
        model.description = Set(description);
    }
    if let Some(scope) = input.scope.filter(|s| s.as_str() != role.scope) {
        changes.insert("scope".into(), json!({ "from": role.scope, "to": scope.as_str() }));
        model.scope = Set(scope.as_str().to_owned());
    }
    if changes.is_empty() {
        return Ok(role);
    }
    let now = app.now();
    model.updated_at = Set(now);
    let updated = model.update(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            name_taken("role")
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: Some(organization_id),
            actor: actor_of(principal),
            action: "role.update",
            target: Some(("Role", role.id)),
            details: serde_json::Value::Object(changes),
        },
    )
    .await?;
    Ok(updated)
}

/// Changes a custom role (`roles.manage`); new keys must be held by the author.
pub async fn update_role(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    role_id: Uuid,
    input: RoleInput,
) -> DomainResult<roles::Model> {
    let tx = app.store.begin_write().await?;
    let (role, _, access) = custom_role_for_change(&tx, app, principal, role_id).await?;
    let updated = update_role_in(&tx, app, meta, principal, &access, role, input).await?;
    tx.commit().await?;
    Ok(updated)
}

/// ROLE_IN_USE unless no binding and no pending invitation uses the role.
async fn ensure_role_unused<C: ConnectionTrait>(conn: &C, app: &App, role: &roles::Model) -> DomainResult<()> {
    let bindings = role_bindings::Entity::find()
        .filter(role_bindings::Column::RoleId.eq(role.id))
        .count(conn)
        .await?
        + crate::store::entities::team_role_bindings::Entity::find()
            .filter(crate::store::entities::team_role_bindings::Column::RoleId.eq(role.id))
            .count(conn)
            .await?;
    let pending_invitations: Vec<Uuid> = invitations::Entity::find()
        .filter(invitations::Column::Status.eq("PENDING"))
        .filter(invitations::Column::ExpiresAt.gt(app.now()))
        .filter(invitations::Column::OrganizationId.eq(role.organization_id.unwrap_or_default()))
        .all(conn)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let invited = if pending_invitations.is_empty() {
        0
    } else {
        invitation_role_bindings::Entity::find()
            .filter(invitation_role_bindings::Column::RoleId.eq(role.id))
            .filter(invitation_role_bindings::Column::InvitationId.is_in(pending_invitations))
            .count(conn)
            .await?
    };
    if bindings > 0 || invited > 0 {
        return Err(DomainError::RoleInUse(format!(
            "role `{}` is held by {bindings} binding(s) (of members or teams) and offered by {invited} pending invitation(s)",
            role.name
        )));
    }
    Ok(())
}

pub(crate) async fn delete_role_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    role: &roles::Model,
) -> DomainResult<()> {
    access.require(app, "roles.manage", None)?;
    let current = role_definition(conn, role.id, app).await?;
    require_every_key_of_role(conn, app, access, role, &current).await?;
    ensure_role_unused(conn, app, role).await?;
    roles::Entity::delete_by_id(role.id).exec(conn).await?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: role.organization_id,
            actor: actor_of(principal),
            action: "role.delete",
            target: Some(("Role", role.id)),
            details: json!({ "name": role.name }),
        },
    )
    .await
}

/// Deletes a custom role that nothing uses (`roles.manage`).
pub async fn delete_role(app: &App, meta: &RequestMeta, principal: &Principal, role_id: Uuid) -> DomainResult<()> {
    let tx = app.store.begin_write().await?;
    let (role, _, access) = custom_role_for_change(&tx, app, principal, role_id).await?;
    delete_role_in(&tx, app, meta, principal, &access, &role).await?;
    tx.commit().await?;
    Ok(())
}

/// Input of createKeychain / updateKeychain.
pub struct KeychainInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub keys: Option<Vec<String>>,
}

pub(crate) async fn create_keychain_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    organization: &crate::store::entities::organizations::Model,
    input: KeychainInput,
) -> DomainResult<keychains::Model> {
    let name = check_name(app, "keychain", input.name.as_deref().unwrap_or_default())?;
    let description = parse_description(input.description.as_deref())?;
    let keys = parse_keys(app, "keys", input.keys.as_deref().unwrap_or_default())?;
    access.require(app, "keychains.manage", None)?;
    grant_rule::refuse_owner_only(app, "keys", &app.catalog.close(&keys))?;
    grant_rule::check_definition_change(
        app,
        access,
        &described("keychain", &name),
        &DefinitionChange {
            before: KeySet::EMPTY,
            after: app.catalog.close(&keys),
            reaches_holders: false,
        },
    )?;
    limits::ensure_room(
        conn,
        app,
        organization.id,
        &organization.plan,
        Limit::CustomKeychains,
        1,
    )
    .await?;
    let now = app.now();
    let keychain = keychains::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(Some(organization.id)),
        kind: Set("CUSTOM".to_owned()),
        name: Set(name),
        description: Set(description),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            name_taken("keychain")
        } else {
            e.into()
        }
    })?;
    write_keychain_keys(conn, app, keychain.id, &keys).await?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "keychain.create",
            target: Some(("Keychain", keychain.id)),
            details: json!({ "name": keychain.name, "keys": app.catalog.names(&keys) }),
        },
    )
    .await?;
    Ok(keychain)
}

/// Creates a custom keychain (`keychains.manage`; only keys the author holds; plan limit).
pub async fn create_keychain(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    input: KeychainInput,
) -> DomainResult<keychains::Model> {
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let access = member_access(&tx, app, principal, organization.id).await?;
    let keychain = create_keychain_in(&tx, app, meta, principal, &access, &organization, input).await?;
    tx.commit().await?;
    Ok(keychain)
}

async fn custom_keychain_for_change<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    keychain_id: Uuid,
) -> DomainResult<(keychains::Model, MemberAccess)> {
    let keychain = keychains::Entity::find_by_id(keychain_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("keychain"))?;
    let Some(organization_id) = keychain.organization_id else {
        return Err(built_in_refused("keychain"));
    };
    organizations::lock(conn, organization_id).await?;
    let access = access::for_principal(conn, app, principal, organization_id)
        .await?
        .ok_or(DomainError::NotFound("keychain"))?;
    Ok((keychain, access))
}

pub(crate) async fn update_keychain_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    keychain: keychains::Model,
    input: KeychainInput,
) -> DomainResult<keychains::Model> {
    let name = input
        .name
        .as_deref()
        .map(|n| check_name(app, "keychain", n))
        .transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|d| parse_description(Some(d)))
        .transpose()?;
    let keys = input.keys.as_deref().map(|k| parse_keys(app, "keys", k)).transpose()?;
    access.require(app, "keychains.manage", None)?;
    // Any change of a keychain (a rename too) needs every key it holds.
    let before = require_every_key_of_keychain(conn, app, access, &keychain).await?;
    let mut changes = serde_json::Map::new();
    if let Some(keys) = keys {
        grant_rule::refuse_owner_only(app, "keys", &app.catalog.close(&keys))?;
        let organization_id = keychain.organization_id.ok_or_else(|| built_in_refused("keychain"))?;
        let users = grant_rule::roles_using_keychain(conn, keychain.id).await?;
        grant_rule::check_definition_change(
            app,
            access,
            &described("keychain", &keychain.name),
            &DefinitionChange {
                before,
                after: app.catalog.close(&keys),
                reaches_holders: grant_rule::roles_in_use(conn, app, &users).await?,
            },
        )?;
        let admins_before = grant_rule::admin_holders(conn, app, organization_id).await?.len();
        write_keychain_keys(conn, app, keychain.id, &keys).await?;
        grant_rule::ensure_admin_limit_after(conn, app, organization_id, admins_before).await?;
        changes.insert("keys".into(), json!(app.catalog.names(&keys)));
    }
    let mut model = keychain.clone().into_active_model();
    if let Some(name) = name.filter(|n| *n != keychain.name) {
        changes.insert("name".into(), json!({ "from": keychain.name, "to": name }));
        model.name = Set(name);
    }
    if let Some(description) = description.filter(|d| *d != keychain.description) {
        changes.insert("description".into(), json!({ "changed": true }));
        model.description = Set(description);
    }
    if changes.is_empty() {
        return Ok(keychain);
    }
    let now = app.now();
    model.updated_at = Set(now);
    let updated = model.update(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            name_taken("keychain")
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        meta,
        now,
        Event {
            organization_id: keychain.organization_id,
            actor: actor_of(principal),
            action: "keychain.update",
            target: Some(("Keychain", keychain.id)),
            details: serde_json::Value::Object(changes),
        },
    )
    .await?;
    Ok(updated)
}

/// Changes a custom keychain (`keychains.manage`); its keys must be held by the author.
pub async fn update_keychain(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    keychain_id: Uuid,
    input: KeychainInput,
) -> DomainResult<keychains::Model> {
    let tx = app.store.begin_write().await?;
    let (keychain, access) = custom_keychain_for_change(&tx, app, principal, keychain_id).await?;
    let updated = update_keychain_in(&tx, app, meta, principal, &access, keychain, input).await?;
    tx.commit().await?;
    Ok(updated)
}

pub(crate) async fn delete_keychain_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    access: &MemberAccess,
    keychain: &keychains::Model,
) -> DomainResult<()> {
    access.require(app, "keychains.manage", None)?;
    require_every_key_of_keychain(conn, app, access, keychain).await?;
    let users = role_keychains::Entity::find()
        .filter(role_keychains::Column::KeychainId.eq(keychain.id))
        .count(conn)
        .await?;
    if users > 0 {
        return Err(DomainError::KeychainInUse(format!(
            "keychain `{}` is assigned to {users} role(s)",
            keychain.name
        )));
    }
    keychains::Entity::delete_by_id(keychain.id).exec(conn).await?;
    audit::record(
        conn,
        meta,
        app.now(),
        Event {
            organization_id: keychain.organization_id,
            actor: actor_of(principal),
            action: "keychain.delete",
            target: Some(("Keychain", keychain.id)),
            details: json!({ "name": keychain.name }),
        },
    )
    .await
}

/// Deletes a custom keychain no role uses (`keychains.manage`).
pub async fn delete_keychain(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    keychain_id: Uuid,
) -> DomainResult<()> {
    let tx = app.store.begin_write().await?;
    let (keychain, access) = custom_keychain_for_change(&tx, app, principal, keychain_id).await?;
    delete_keychain_in(&tx, app, meta, principal, &access, &keychain).await?;
    tx.commit().await?;
    Ok(())
}

/// Adds or removes a keychain of a custom role (`keychains.assign`). The author must hold every
/// key of the keychain: adding one grants them to the role's holders, removing one takes them away.
pub async fn set_keychain_assignment(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    keychain_id: Uuid,
    role_id: Uuid,
    assigned: bool,
) -> DomainResult<(keychains::Model, roles::Model)> {
    let tx = app.store.begin_write().await?;
    let role = roles::Entity::find_by_id(role_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("role"))?;
    let Some(organization_id) = role.organization_id else {
        return Err(built_in_refused("role"));
    };
    organizations::lock(&tx, organization_id).await?;
    let access = access::for_principal(&tx, app, principal, organization_id)
        .await?
        .ok_or(DomainError::NotFound("role"))?;
    let keychain = usable_keychains(&tx, organization_id, &[keychain_id])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("keychain"))?;
    access.require(app, "keychains.assign", None)?;
    if assigned {
        grant_rule::refuse_owner_only(app, "keychainId", &keychain_keys_closed(&tx, app, keychain.id).await?)?;
    }
    let current = role_definition(&tx, role.id, app).await?;
    let mut chains_after: Vec<Uuid> = current
        .keychain_ids
        .iter()
        .copied()
        .filter(|id| *id != keychain.id)
        .collect();
    if assigned {
        chains_after.push(keychain.id);
    }
    grant_rule::check_definition_change(
        app,
        &access,
        &described("role", &role.name),
        &DefinitionChange {
            before: effective(&tx, app, &current.keys, &current.keychain_ids).await?,
            after: effective(&tx, app, &current.keys, &chains_after).await?,
            reaches_holders: grant_rule::roles_in_use(&tx, app, &[role.id]).await?,
        },
    )?;
    let admins_before = grant_rule::admin_holders(&tx, app, organization_id).await?.len();
    let linked = role_keychains::Entity::find()
        .filter(role_keychains::Column::RoleId.eq(role.id))
        .filter(role_keychains::Column::KeychainId.eq(keychain.id))
        .count(&tx)
        .await?
        > 0;
    match (assigned, linked) {
        (true, true) => {
            return Err(DomainError::conflict(
                None,
                "the keychain is already assigned to this role",
            ));
        }
        (false, false) => return Err(DomainError::NotFound("keychain assignment")),
        (true, false) => {
            role_keychains::ActiveModel {
                role_id: Set(role.id),
                keychain_id: Set(keychain.id),
            }
            .insert(&tx)
            .await?;
        }
        (false, true) => {
            role_keychains::Entity::delete_many()
                .filter(role_keychains::Column::RoleId.eq(role.id))
                .filter(role_keychains::Column::KeychainId.eq(keychain.id))
                .exec(&tx)
                .await?;
        }
    }
    grant_rule::ensure_admin_limit_after(&tx, app, organization_id, admins_before).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(organization_id),
            actor: actor_of(principal),
            action: if assigned {
                "keychain.assign"
            } else {
                "keychain.unassign"
            },
            target: Some(("Role", role.id)),
            details: json!({ "role": role.name, "keychain": keychain.name, "keychainId": keychain.id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((keychain, role))
}

/// Built-in roles followed by the organization's custom roles, by name.
pub async fn roles_of<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> DomainResult<Vec<roles::Model>> {
    let mut builtin = roles::Entity::find()
        .filter(roles::Column::OrganizationId.is_null())
        .order_by_asc(roles::Column::Position)
        .all(conn)
        .await?;
    let custom = roles::Entity::find()
        .filter(roles::Column::OrganizationId.eq(organization_id))
        .order_by_asc(roles::Column::Name)
        .all(conn)
        .await?;
    builtin.extend(custom);
    Ok(builtin)
}

/// Built-in keychains followed by the organization's custom keychains, by name.
pub async fn keychains_of<C: ConnectionTrait>(conn: &C, organization_id: Uuid) -> DomainResult<Vec<keychains::Model>> {
    let mut builtin = keychains::Entity::find()
        .filter(keychains::Column::OrganizationId.is_null())
        .all(conn)
        .await?;
    let custom = keychains::Entity::find()
        .filter(keychains::Column::OrganizationId.eq(organization_id))
        .order_by_asc(keychains::Column::Name)
        .all(conn)
        .await?;
    builtin.extend(custom);
    Ok(builtin)
}

/// A role by id, built-in or custom, whichever organization it belongs to.
pub async fn role_by_id(app: &App, id: Uuid) -> DomainResult<Option<roles::Model>> {
    Ok(roles::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// A keychain by id, built-in or custom, whichever organization it belongs to.
pub async fn keychain_by_id(app: &App, id: Uuid) -> DomainResult<Option<keychains::Model>> {
    Ok(keychains::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// Direct keys and keychains of many custom roles at once.
pub async fn definitions_of<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    role_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, RoleDefinition>> {
    if role_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut out: HashMap<Uuid, RoleDefinition> = role_ids
        .iter()
        .map(|id| {
            (
                *id,
                RoleDefinition {
                    keys: KeySet::EMPTY,
                    keychain_ids: Vec::new(),
                },
            )
        })
        .collect();
    for row in role_keys::Entity::find()
        .filter(role_keys::Column::RoleId.is_in(role_ids.to_vec()))
        .all(conn)
        .await?
    {
        if let (Some(def), Some(key)) = (out.get_mut(&row.role_id), app.catalog.lookup(&row.key)) {
            def.keys.insert(key);
        }
    }
    for row in role_keychains::Entity::find()
        .filter(role_keychains::Column::RoleId.is_in(role_ids.to_vec()))
        .all(conn)
        .await?
    {
        if let Some(def) = out.get_mut(&row.role_id) {
            def.keychain_ids.push(row.keychain_id);
        }
    }
    Ok(out)
}
