//! Bulk data for tests and benchmarks of large organizations: rows written straight to the
//! database, because creating thousands of accounts over HTTP would only measure password
//! hashing. Not used by the server itself.
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use super::Store;
use super::entities::{memberships, role_bindings, users};

/// Adds `count` password-less users as members of an organization, each bound to `role`
/// organization-wide when given. Returns the new membership ids in creation order.
pub async fn bulk_members(
    store: &Store,
    organization_id: Uuid,
    count: usize,
    role: Option<Uuid>,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let now = chrono::Utc::now();
    let mut created = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut user_rows = Vec::new();
        let mut member_rows = Vec::new();
        let mut binding_rows = Vec::new();
        for i in chunk {
            let user_id = Uuid::now_v7();
            let email = format!("member-{i:05}-{}@example.com", user_id.simple());
            user_rows.push(users::ActiveModel {
                id: Set(user_id),
                kind: Set("HUMAN".to_owned()),
                email: Set(Some(email.clone())),
                email_canonical: Set(Some(email)),
                name: Set(format!("Member {i}")),
                password_hash: Set(None),
                token_version: Set(0),
                service_organization_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                email_verified_at: Set(Some(now)),
                totp_secret: Set(None),
                totp_enabled_at: Set(None),
                totp_last_step: Set(None),
            });
            let membership_id = Uuid::now_v7();
            created.push(membership_id);
            member_rows.push(memberships::ActiveModel {
                id: Set(membership_id),
                organization_id: Set(organization_id),
                user_id: Set(user_id),
                created_at: Set(now),
            });
            if let Some(role) = role {
                binding_rows.push(role_bindings::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    membership_id: Set(membership_id),
                    role_id: Set(role),
                    workspace_id: Set(None),
                    scope_key: Set("org".to_owned()),
                    granted_by_user_id: Set(None),
                    granted_at: Set(now),
                    expires_at: Set(None),
                    reason: Set(None),
                });
            }
        }
        users::Entity::insert_many(user_rows)
            .exec_without_returning(&store.conn)
            .await?;
        memberships::Entity::insert_many(member_rows)
            .exec_without_returning(&store.conn)
            .await?;
        if !binding_rows.is_empty() {
            role_bindings::Entity::insert_many(binding_rows)
                .exec_without_returning(&store.conn)
                .await?;
        }
    }
    Ok(created)
}
