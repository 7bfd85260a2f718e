//! Memberships: joining an organization and listing its members.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::store::entities::memberships;

use super::error::{DomainError, DomainResult, is_unique_violation};
use super::limits::{self, Limit};
use super::page::{Page, PageRequest};
use super::{App, new_id, organizations};

/// Makes a user a member (with no role yet) after checking the plan's member limit. Used by
/// invitation acceptance and service accounts; the caller owns the transaction.
pub async fn add_member_in<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    user_id: Uuid,
    already_counted: bool,
) -> DomainResult<memberships::Model> {
    let organization = organizations::lock(conn, organization_id).await?;
    if !already_counted {
        limits::ensure_room(conn, app, organization.id, &organization.plan, Limit::Members, 1).await?;
    }
    memberships::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(organization_id),
        user_id: Set(user_id),
        created_at: Set(app.now()),
    }
    .insert(conn)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            DomainError::conflict(None, "the user is already a member of this organization")
        } else {
            e.into()
        }
    })
}

/// Adds a member in its own transaction.
pub async fn add_member(app: &App, organization_id: Uuid, user_id: Uuid) -> DomainResult<memberships::Model> {
    let tx = app.store.begin_write().await?;
    let membership = add_member_in(&tx, app, organization_id, user_id, false).await?;
    tx.commit().await?;
    Ok(membership)
}

/// A page of an organization's members in the order they joined.
pub async fn page(app: &App, organization_id: Uuid, page: PageRequest) -> DomainResult<Page<memberships::Model>> {
    let mut query = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .order_by_asc(memberships::Column::Id)
        .limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(memberships::Column::Id.gt(after));
    }
    let rows = query.all(&app.store.conn).await?;
    Ok(Page::from_rows(
        rows.into_iter().map(|m| (m.id, m)).collect(),
        page.first,
    ))
}

pub async fn count(app: &App, organization_id: Uuid) -> DomainResult<u64> {
    Ok(memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .count(&app.store.conn)
        .await?)
}
