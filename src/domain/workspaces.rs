//! Workspaces: sub-scopes of an organization in which roles can be bound.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::workspaces;

use super::audit::{self, Event};
use super::error::{DomainError, DomainResult, is_unique_violation};
use super::limits::{self, Limit};
use super::organizations::{self, actor_of, member_access};
use super::page::{Page, PageRequest};
use super::validate::{Slug, display_name};
use super::{App, Principal, RequestMeta, new_id};

const MAX_DESCRIPTION_CHARS: usize = 1_000;

fn slug_taken() -> DomainError {
    DomainError::conflict(
        Some("slug"),
        "a workspace with this slug already exists in the organization",
    )
}

pub fn description(raw: Option<&str>) -> DomainResult<String> {
    let text = raw.unwrap_or_default().trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::bad_input(
            "description",
            format!("use at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

pub struct CreateWorkspace {
    pub organization_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
}

/// Creates a workspace (`workspaces.manage` at the organization; plan limit `workspaces`).
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    input: CreateWorkspace,
) -> DomainResult<workspaces::Model> {
    let name = display_name("name", &input.name)?;
    let slug = Slug::parse("slug", &input.slug)?;
    let description = description(input.description.as_deref())?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, input.organization_id).await?;
    let access = member_access(&tx, app, principal, organization.id).await?;
    access.require(app, "workspaces.manage", None)?;
    limits::ensure_room(&tx, app, organization.id, &organization.plan, Limit::Workspaces, 1).await?;
    let workspace = workspaces::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization.id),
        slug: Set(slug.into_string()),
        name: Set(name),
        description: Set(description),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken()
        } else {
            e.into()
        }
    })?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "workspace.create",
            target: Some(("Workspace", workspace.id)),
            details: json!({ "slug": workspace.slug, "name": workspace.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(workspace)
}

/// A workspace of an organization the caller belongs to, or NOT_FOUND.
async fn find_for<C: sea_orm::ConnectionTrait>(
    conn: &C,
    app: &App,
    principal: &Principal,
    workspace_id: Uuid,
) -> DomainResult<(workspaces::Model, super::access::MemberAccess)> {
    let workspace = workspaces::Entity::find_by_id(workspace_id)
        .one(conn)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    let access = super::access::for_principal(conn, app, principal, workspace.organization_id)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    Ok((workspace, access))
}

pub struct UpdateWorkspace {
    pub workspace_id: Uuid,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
}

/// Changes a workspace (`workspaces.manage` in that workspace).
pub async fn update(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    input: UpdateWorkspace,
) -> DomainResult<workspaces::Model> {
    let name = input.name.as_deref().map(|n| display_name("name", n)).transpose()?;
    let slug = input.slug.as_deref().map(|s| Slug::parse("slug", s)).transpose()?;
    let description = input.description.as_deref().map(|d| description(Some(d))).transpose()?;
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let (current, _) = find_for(&tx, app, principal, input.workspace_id).await?;
    organizations::lock(&tx, current.organization_id).await?;
    // Read again under the lock: a revocation committed while this waited for it counts.
    let access = member_access(&tx, app, principal, current.organization_id).await?;
    access.require(app, "workspaces.manage", Some(current.id))?;
    let mut changes = serde_json::Map::new();
    let mut model = current.clone().into_active_model();
    if let Some(name) = name.filter(|n| *n != current.name) {
        changes.insert("name".into(), json!({ "from": current.name, "to": name }));
        model.name = Set(name);
    }
    if let Some(slug) = slug.filter(|s| s.as_str() != current.slug) {
        changes.insert("slug".into(), json!({ "from": current.slug, "to": slug.as_str() }));
        model.slug = Set(slug.into_string());
    }
    if let Some(description) = description.filter(|d| *d != current.description) {
        changes.insert("description".into(), json!({ "changed": true }));
        model.description = Set(description);
    }
    if changes.is_empty() {
        return Ok(current);
    }
    model.updated_at = Set(now);
    let updated = model.update(&tx).await.map_err(|e| {
        if is_unique_violation(&e) {
            slug_taken()
        } else {
            e.into()
        }
    })?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(updated.organization_id),
            actor: actor_of(principal),
            action: "workspace.update",
            target: Some(("Workspace", updated.id)),
            details: serde_json::Value::Object(changes),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes a workspace and the role bindings scoped to it (`workspaces.manage` in it).
pub async fn delete(app: &App, meta: &RequestMeta, principal: &Principal, workspace_id: Uuid) -> DomainResult<()> {
    let now = app.now();
    let tx = app.store.begin_write().await?;
    let (workspace, _) = find_for(&tx, app, principal, workspace_id).await?;
    organizations::lock(&tx, workspace.organization_id).await?;
    let access = member_access(&tx, app, principal, workspace.organization_id).await?;
    access.require(app, "workspaces.manage", Some(workspace.id))?;
    workspaces::Entity::delete_by_id(workspace.id).exec(&tx).await?;
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(workspace.organization_id),
            actor: actor_of(principal),
            action: "workspace.delete",
            target: Some(("Workspace", workspace.id)),
            details: json!({ "slug": workspace.slug, "name": workspace.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A page of an organization's workspaces, optionally only some of them.
pub async fn page(
    app: &App,
    organization_id: Uuid,
    only: Option<Vec<Uuid>>,
    page: PageRequest,
) -> DomainResult<Page<workspaces::Model>> {
    let mut query = workspaces::Entity::find()
        .filter(workspaces::Column::OrganizationId.eq(organization_id))
        .order_by_asc(workspaces::Column::Id)
        .limit(page.first + 1);
    if let Some(only) = only {
        query = query.filter(workspaces::Column::Id.is_in(only));
    }
    if let Some(after) = page.after {
        query = query.filter(workspaces::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(|w| (w.id, w)).collect(),
        page.first,
    ))
}

pub async fn count(app: &App, organization_id: Uuid, only: Option<Vec<Uuid>>) -> DomainResult<u64> {
    let mut query = workspaces::Entity::find().filter(workspaces::Column::OrganizationId.eq(organization_id));
    if let Some(only) = only {
        query = query.filter(workspaces::Column::Id.is_in(only));
    }
    Ok(query.count(&app.store.conn).await?)
}

/// A workspace by id, whichever organization it belongs to.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<workspaces::Model>> {
    Ok(workspaces::Entity::find_by_id(id).one(&app.store.conn).await?)
}
