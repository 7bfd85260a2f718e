//! The one rule for handing out keys, applied by every path that creates or changes a binding,
//! a role, a keychain, an invitation, a service account or a token:
//!
//! * the giver holds every key given, at that scope, as seen through the token they act with;
//! * keys that only owners grant ([`crate::authz::Catalog::owner_granted_keys`]) reach other
//!   people only from owners;
//! * owner-only keys are held through the built-in `owner` role and nothing else: a custom role
//!   or keychain can never contain one;
//! * whoever holds an admin-class key organization-wide counts against the plan's admin limit.
//!
//! Editing or deleting a definition hands out (or takes away) the difference from every holder,
//! so the editor needs every key the definition holds before and after the change.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::authz::{self, GiftRefusal, KeySet};
use crate::store::entities::{
    invitation_role_bindings, invitations, organizations, role_bindings, role_keychains, roles,
};

use super::access::{self, MemberAccess};
use super::builtins;
use super::error::{DomainError, DomainResult};
use super::limits::{self, Limit};
use super::{App, bindings};

/// Whether the member acts as an owner: holds the built-in `owner` role and, through a token,
/// one whose keychain keeps every owner-only key (a narrowed owner token is no owner).
pub fn is_owner(app: &App, access: &MemberAccess) -> bool {
    access.holds_role(app, builtins::role_id("owner"))
        && access
            .mask
            .is_none_or(|mask| app.catalog.owner_only_keys().is_subset_of(&mask))
}

/// Applies the rule to a giver handing out `given` at a scope (the organization, or one
/// workspace) for as long as `until` (`None`: for good). `what` names the thing given, for the
/// message. A key the giver holds only through grants that end before `until` counts as not
/// held: a grant that ends is never made to outlast itself.
pub fn check_gift(
    app: &App,
    giver: &MemberAccess,
    given: &KeySet,
    workspace: Option<Uuid>,
    what: &str,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> DomainResult<()> {
    let held = giver.keys_held_until(app, workspace, until);
    match authz::may_give(&app.catalog, &held, is_owner(app, giver), given) {
        Ok(()) => Ok(()),
        Err(GiftRefusal::Missing(index)) => {
            let key = app.catalog.key(index).id.clone();
            let message = if giver.keys_at(app, workspace).contains(index) {
                format!("{what} holds `{key}`, which you hold here only for a time: you cannot give it for longer")
            } else {
                format!("{what} holds `{key}`, which you do not hold here")
            };
            Err(giver.deny(DomainError::Forbidden {
                message,
                key: Some(key),
            }))
        }
        Err(GiftRefusal::OwnersOnly(key)) => {
            let key = app.catalog.key(key).id.clone();
            Err(giver.deny(DomainError::Forbidden {
                message: format!("{what} holds `{key}`, which only owners may hand out"),
                key: Some(key),
            }))
        }
    }
}

/// BAD_USER_INPUT naming every owner-only key in a custom definition's keys.
pub fn refuse_owner_only(app: &App, field: &str, keys: &KeySet) -> DomainResult<()> {
    let owner_only = keys.intersection(&app.catalog.owner_only_keys());
    if owner_only.is_empty() {
        return Ok(());
    }
    Err(DomainError::bad_input(
        field,
        format!(
            "owner-only keys are held through the role `owner` only and cannot be part of a custom role or keychain: {}",
            app.catalog.names(&owner_only).join(", ")
        ),
    ))
}

/// A change of a custom role's or keychain's effective keys.
pub struct DefinitionChange {
    pub before: KeySet,
    pub after: KeySet,
    /// Whether anyone holds (or is offered) the definition, so that the change reaches people.
    pub reaches_holders: bool,
}

/// The rule for editing, creating (`before` empty) or deleting (`after` empty) a definition:
/// the editor holds every key it has before and after, and only owners hand owner-granted keys
/// to existing holders.
pub fn check_definition_change(
    app: &App,
    editor: &MemberAccess,
    what: &str,
    change: &DefinitionChange,
) -> DomainResult<()> {
    let touched = change.before.union(&change.after);
    if let Some(missing) = authz::first_missing(&editor.keys_at(app, None), &touched) {
        let key = app.catalog.key(missing).id.clone();
        return Err(editor.deny(DomainError::Forbidden {
            message: format!(
                "{what} holds `{key}`, which you do not hold; only holders of every key it has may change it"
            ),
            key: Some(key),
        }));
    }
    if change.reaches_holders {
        let added = change.after.difference(&change.before);
        // A definition's holders keep what it gains for as long as they hold it.
        check_gift(app, editor, &added, None, what, None)?;
    }
    Ok(())
}

/// Whether any binding or pending invitation uses one of these roles.
pub async fn roles_in_use<C: ConnectionTrait>(conn: &C, app: &App, role_ids: &[Uuid]) -> DomainResult<bool> {
    if role_ids.is_empty() {
        return Ok(false);
    }
    let bound = role_bindings::Entity::find()
        .filter(role_bindings::Column::RoleId.is_in(role_ids.to_vec()))
        .count(conn)
        .await?;
    if bound > 0 {
        return Ok(true);
    }
    let bound_to_teams = crate::store::entities::team_role_bindings::Entity::find()
        .filter(crate::store::entities::team_role_bindings::Column::RoleId.is_in(role_ids.to_vec()))
        .count(conn)
        .await?;
    if bound_to_teams > 0 {
        return Ok(true);
    }
    let offered: Vec<Uuid> = invitation_role_bindings::Entity::find()
        .filter(invitation_role_bindings::Column::RoleId.is_in(role_ids.to_vec()))
        .select_only()
        .column(invitation_role_bindings::Column::InvitationId)
        .into_tuple()
        .all(conn)
        .await?;
    if offered.is_empty() {
        return Ok(false);
    }
    let pending = invitations::Entity::find()
        .filter(invitations::Column::Id.is_in(offered))
        .filter(invitations::Column::Status.eq(super::invitations::PENDING))
        .filter(invitations::Column::ExpiresAt.gt(app.now()))
        .count(conn)
        .await?;
    Ok(pending > 0)
}

/// Roles that use a keychain.
pub async fn roles_using_keychain<C: ConnectionTrait>(conn: &C, keychain_id: Uuid) -> DomainResult<Vec<Uuid>> {
    Ok(role_keychains::Entity::find()
        .filter(role_keychains::Column::KeychainId.eq(keychain_id))
        .select_only()
        .column(role_keychains::Column::RoleId)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Roles usable in an organization that carry an admin-class key: built-in ones from the
/// catalog, the organization's custom ones from their current definitions.
pub async fn admin_role_ids<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Vec<Uuid>> {
    let admin_class = app.catalog.admin_class_keys();
    let mut ids: Vec<Uuid> = app
        .catalog
        .roles
        .iter()
        .filter(|r| !r.effective_keys.intersection(&admin_class).is_empty())
        .map(|r| builtins::role_id(&r.name))
        .collect();
    let custom: Vec<Uuid> = roles::Entity::find()
        .filter(roles::Column::OrganizationId.eq(organization_id))
        .select_only()
        .column(roles::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    let sets = access::role_key_sets(conn, app, &custom).await?;
    ids.extend(
        sets.into_iter()
            .filter(|(_, keys)| !keys.intersection(&admin_class).is_empty())
            .map(|(id, _)| id),
    );
    Ok(ids)
}

/// Members holding an admin-class key organization-wide, whatever their role is called and
/// whether they hold it themselves or through a team.
pub async fn admin_holders<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Vec<Uuid>> {
    let roles = admin_role_ids(conn, app, organization_id).await?;
    bindings::holders(conn, organization_id, &roles, app.now(), bindings::Through::OwnOrTeam).await
}

/// After a definition change: LIMIT_EXCEEDED when it made more members admins than the plan
/// allows (`before` is the count taken before the change).
pub async fn ensure_admin_limit_after<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    before: usize,
) -> DomainResult<()> {
    let after = admin_holders(conn, app, organization_id).await?.len();
    if after <= before {
        return Ok(());
    }
    let plan = organizations::Entity::find_by_id(organization_id)
        .one(conn)
        .await?
        .map(|o| o.plan)
        .ok_or(DomainError::NotFound("organization"))?;
    let max = limits::limit_for(app, &plan, Limit::Admins) as usize;
    if after > max {
        return Err(DomainError::LimitExceeded {
            limit: Limit::Admins.name().to_owned(),
            message: format!(
                "this change would give admin-class keys to {after} members; the {plan} plan allows {max} admins"
            ),
        });
    }
    Ok(())
}
