//! API tokens for integrations and service accounts. A token is shown once, stored as SHA-256,
//! and never carries keys of its own: it acts with its user's live keys, narrowed to one
//! organization and one keychain when asked.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use uuid::Uuid;

use crate::store::entities::{api_tokens, keychains, memberships, users};

use super::access::{self, MemberAccess};
use super::audit::{self, Event};
use super::bindings::{self, Target};
use super::error::{DomainError, DomainResult};
use super::invitations::Offer;
use super::limits::{self, Limit};
use super::organizations::{self, actor_of, member_access};
use super::standing::TokenHolder;
use super::validate::display_name;
use super::{App, Principal, RequestMeta, TokenGrant, definitions, members, new_id, secrets};

/// Personal tokens.
pub const PERSONAL_PREFIX: &str = "ghp_";
/// Service account tokens.
pub const SERVICE_PREFIX: &str = "ghs_";
/// `lastUsedAt` is written at most this often per token, not on every request.
const LAST_USED_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);
/// Characters of the secret kept for display, prefix included.
const DISPLAY_PREFIX_CHARS: usize = 10;

/// Whether a bearer credential looks like one of our API tokens.
pub fn is_api_token(bearer: &str) -> bool {
    bearer.starts_with(PERSONAL_PREFIX) || bearer.starts_with(SERVICE_PREFIX)
}

/// Resolves an API token to its user and limits; UNAUTHENTICATED when unknown, revoked or
/// expired.
pub async fn authenticate(app: &App, bearer: &str) -> DomainResult<Principal> {
    let invalid = || DomainError::Unauthenticated("the API token is invalid, expired or revoked".to_owned());
    let conn = &app.store.conn;
    let now = app.now();
    let digest = secrets::digest(bearer);
    let holder = match app.standing.token(&digest) {
        Some(holder) => holder,
        None => {
            let read_at = app.standing.generation();
            let token = api_tokens::Entity::find()
                .filter(api_tokens::Column::TokenHash.eq(digest.clone()))
                .one(conn)
                .await?
                .ok_or_else(invalid)?;
            let user = users::Entity::find_by_id(token.user_id)
                .one(conn)
                .await?
                .ok_or_else(invalid)?;
            let keychain_keys = match token.keychain_id {
                Some(id) => {
                    let sets = access::keychain_key_sets(conn, app, &[id]).await?;
                    Some(app.catalog.close(&sets.get(&id).copied().unwrap_or_default()))
                }
                None => None,
            };
            let holder = TokenHolder {
                token,
                user,
                keychain_keys,
            };
            app.standing.keep_token(read_at, digest, holder.clone());
            holder
        }
    };
    let TokenHolder {
        token,
        user,
        keychain_keys,
    } = holder;
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    if token
        .last_used_at
        .is_none_or(|last| now - last >= LAST_USED_GRANULARITY)
    {
        api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.eq(token.id))
            .exec(conn)
            .await?;
    }
    Ok(Principal {
        user,
        session_id: None,
        external: None,
        token: Some(TokenGrant {
            id: token.id,
            organization_id: token.organization_id,
            keychain_keys,
            expires_at: token.expires_at,
        }),
    })
}

/// What a new token may be limited to.
pub struct TokenSpec {
    pub name: String,
    pub organization_id: Option<Uuid>,
    pub keychain_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The keychains reachable through a member's roles.
async fn reachable_keychains<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    member: &MemberAccess,
) -> DomainResult<Vec<Uuid>> {
    let mut ids = Vec::new();
    let custom: Vec<Uuid> = member
        .in_force(app)
        .map(|b| b.binding.role_id)
        .filter(|id| app.builtins.role(id).is_none())
        .collect();
    for binding in member.in_force(app) {
        if let Some(chains) = app.builtins.role_keychains(&binding.binding.role_id) {
            ids.extend_from_slice(chains);
        }
    }
    for definition in definitions::definitions_of(conn, app, &custom).await?.values() {
        ids.extend(definition.keychain_ids.iter().copied());
    }
    Ok(ids)
}

async fn check_spec<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    spec: &TokenSpec,
    holder: Option<&MemberAccess>,
) -> DomainResult<String> {
    let name = display_name("name", &spec.name)?;
    if spec.expires_at.is_some_and(|e| e <= app.now()) {
        return Err(DomainError::bad_input("expiresAt", "the expiry must be in the future"));
    }
    if let Some(keychain_id) = spec.keychain_id {
        let Some(holder) = holder else {
            return Err(DomainError::bad_input(
                "keychainId",
                "a keychain-bound token needs an organizationId",
            ));
        };
        let keychain = keychains::Entity::find_by_id(keychain_id)
            .one(conn)
            .await?
            .filter(|k| k.organization_id.is_none_or(|o| o == holder.membership.organization_id))
            .ok_or(DomainError::NotFound("keychain"))?;
        // Reachable: assigned to one of the holder's roles, or made only of keys those roles
        // grant (an owner's role carries one all-keys keychain, yet every smaller one is in reach).
        let keys = access::keychain_key_sets(conn, app, &[keychain.id]).await?;
        let within = app
            .catalog
            .close(&keys.get(&keychain.id).copied().unwrap_or_default())
            .is_subset_of(&holder.keys_at(app, None));
        if !within && !reachable_keychains(conn, app, holder).await?.contains(&keychain.id) {
            return Err(DomainError::Forbidden {
                message: format!(
                    "keychain `{}` is not part of any role the token's user holds",
                    keychain.name
                ),
                key: None,
            });
        }
    }
    Ok(name)
}

async fn insert_token<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    user_id: Uuid,
    prefix: &str,
    name: String,
    spec: &TokenSpec,
) -> DomainResult<(api_tokens::Model, String)> {
    let secret = secrets::generate(prefix);
    let token = api_tokens::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id),
        organization_id: Set(spec.organization_id),
        keychain_id: Set(spec.keychain_id),
        name: Set(name),
        prefix: Set(secret.chars().take(DISPLAY_PREFIX_CHARS).collect()),
        token_hash: Set(secrets::digest(&secret)),
        expires_at: Set(spec.expires_at),
        last_used_at: Set(None),
        created_at: Set(app.now()),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok((token, secret))
}

/// A token minted through another token expires no later than it: an integration whose token
/// runs out cannot keep working through tokens it minted.
fn within_caller_token(principal: &Principal, wanted: Option<DateTime<Utc>>) -> DomainResult<Option<DateTime<Utc>>> {
    let Some(limit) = principal.token.and_then(|t| t.expires_at) else {
        return Ok(wanted);
    };
    match wanted {
        None => Ok(Some(limit)),
        Some(at) if at <= limit => Ok(Some(at)),
        Some(_) => Err(DomainError::bad_input(
            "expiresAt",
            "a token minted with an API token cannot outlive that token",
        )),
    }
}

/// Creates a personal token of the caller; returns it with its secret (shown once).
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    spec: TokenSpec,
) -> DomainResult<(api_tokens::Model, String)> {
    principal.require_session("creating a personal API token")?;
    // A token outlives the provider's sign-in it would be minted from: a person the provider
    // stops vouching for must not keep a Guildhall credential.
    if principal.external.is_some() {
        return Err(DomainError::Forbidden {
            message: "personal API tokens are minted from a Guildhall sign-in, not an identity provider's token"
                .to_owned(),
            key: None,
        });
    }
    let tx = app.store.begin_write().await?;
    let holder = match spec.organization_id {
        Some(org) => Some(member_access(&tx, app, principal, org).await?),
        None => None,
    };
    let name = check_spec(&tx, app, &spec, holder.as_ref()).await?;
    let prefix = if principal.user.kind == "SERVICE" {
        SERVICE_PREFIX
    } else {
        PERSONAL_PREFIX
    };
    let (token, secret) = insert_token(&tx, app, principal.user.id, prefix, name, &spec).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: spec.organization_id,
            actor: actor_of(principal),
            action: "api_token.create",
            target: Some(("ApiToken", token.id)),
            details: json!({ "name": token.name, "keychainId": token.keychain_id, "expiresAt": token.expires_at }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}

/// Revokes a token: one's own, or one issued in an organization where the caller holds
/// `tokens.manage` (or `service_accounts.manage` for service account tokens).
pub async fn revoke(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    token_id: Uuid,
) -> DomainResult<api_tokens::Model> {
    let tx = app.store.begin_write().await?;
    let token = api_tokens::Entity::find_by_id(token_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("API token"))?;
    // Through a token: its own organization only (nothing else exists for it), and the user's
    // other tokens are an account matter unless they belong to that organization.
    if let Some(caller) = principal.token
        && caller.id != token.id
    {
        if caller
            .organization_id
            .is_some_and(|only| token.organization_id != Some(only))
        {
            return Err(DomainError::NotFound("API token"));
        }
        if token.organization_id.is_none() {
            principal.require_session("revoking a personal API token")?;
        }
    }
    if token.user_id != principal.user.id {
        let Some(org) = token.organization_id else {
            return Err(DomainError::NotFound("API token"));
        };
        let actor = access::for_principal(&tx, app, principal, org)
            .await?
            .ok_or(DomainError::NotFound("API token"))?;
        let owner = users::Entity::find_by_id(token.user_id).one(&tx).await?;
        let key = if owner.is_some_and(|u| u.kind == "SERVICE") {
            "service_accounts.manage"
        } else {
            "tokens.manage"
        };
        if actor.require(app, key, None).is_err() && actor.require(app, "tokens.manage", None).is_err() {
            return Err(DomainError::forbidden_key(key));
        }
    }
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let mut model: api_tokens::ActiveModel = token.clone().into();
    model.revoked_at = Set(Some(app.now()));
    let revoked = model.update(&tx).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: token.organization_id,
            actor: actor_of(principal),
            action: "api_token.revoke",
            target: Some(("ApiToken", token.id)),
            details: json!({ "name": token.name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// The caller's own tokens, newest first.
pub async fn of_user(app: &App, user_id: Uuid) -> DomainResult<Vec<api_tokens::Model>> {
    Ok(api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .order_by_desc(api_tokens::Column::Id)
        .all(&app.store.conn)
        .await?)
}

/// A token by id, whoever it belongs to.
pub async fn find(app: &App, id: Uuid) -> DomainResult<Option<api_tokens::Model>> {
    Ok(api_tokens::Entity::find_by_id(id).one(&app.store.conn).await?)
}

/// Creates a SERVICE account in an organization (`service_accounts.manage`) with role bindings
/// the caller may grant.
pub async fn create_service_account(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    organization_id: Uuid,
    name: &str,
    offers: Vec<Offer>,
) -> DomainResult<memberships::Model> {
    let name = display_name("name", name)?;
    let offers = super::invitations::normalize_offers(offers)?;
    let tx = app.store.begin_write().await?;
    let organization = organizations::lock(&tx, organization_id).await?;
    let actor = member_access(&tx, app, principal, organization.id).await?;
    actor.require(app, "service_accounts.manage", None)?;
    super::invitations::check_offers(&tx, app, &actor, organization.id, &offers).await?;
    limits::ensure_room(&tx, app, organization.id, &organization.plan, Limit::Members, 1).await?;
    let now = app.now();
    let user = users::ActiveModel {
        id: Set(new_id()),
        kind: Set("SERVICE".to_owned()),
        email: Set(None),
        email_canonical: Set(None),
        name: Set(name),
        password_hash: Set(None),
        token_version: Set(0),
        service_organization_id: Set(Some(organization.id)),
        created_at: Set(now),
        updated_at: Set(now),
        email_verified_at: Set(None),
        totp_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
    }
    .insert(&tx)
    .await?;
    let membership = super::members::add_member_in(&tx, app, organization.id, user.id, true).await?;
    for offer in offers {
        let target = Target {
            organization: organization.clone(),
            membership: membership.clone(),
            role: bindings::resolve_role(&tx, organization.id, offer.role_id).await?,
            workspace_id: offer.workspace_id,
        };
        let terms = bindings::Terms {
            expires_at: offer.expires_at,
            reason: None,
            recovery: false,
        };
        match bindings::bind(&tx, app, &target, Some(principal.user.id), &terms).await {
            Ok(_) | Err(DomainError::Conflict { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    audit::record(
        &tx,
        meta,
        now,
        Event {
            organization_id: Some(organization.id),
            actor: actor_of(principal),
            action: "service_account.create",
            target: Some(("Membership", membership.id)),
            details: json!({ "name": user.name, "userId": user.id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(membership)
}

/// Mints a token for a service account of the organization (`service_accounts.manage`); it is
/// always restricted to that organization.
pub async fn create_service_account_token(
    app: &App,
    meta: &RequestMeta,
    principal: &Principal,
    membership_id: Uuid,
    spec: TokenSpec,
) -> DomainResult<(api_tokens::Model, String)> {
    let tx = app.store.begin_write().await?;
    let membership = memberships::Entity::find_by_id(membership_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    organizations::lock(&tx, membership.organization_id).await?;
    let actor = access::for_principal(&tx, app, principal, membership.organization_id)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    actor.require(app, "service_accounts.manage", None)?;
    let user = users::Entity::find_by_id(membership.user_id)
        .one(&tx)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    if user.kind != "SERVICE" {
        return Err(DomainError::bad_input(
            "membershipId",
            "this member is not a service account",
        ));
    }
    let holder = access::load(&tx, app, user.id, membership.organization_id)
        .await?
        .ok_or(DomainError::NotFound("membership"))?;
    // A token acts with every key of its account: minting one hands those keys out, so the
    // caller (through their own token, if they use one) must hold all of them.
    members::ensure_covers(app, &actor, &holder)?;
    let expires_at = within_caller_token(principal, spec.expires_at)?;
    let spec = TokenSpec {
        organization_id: Some(membership.organization_id),
        expires_at,
        ..spec
    };
    let name = check_spec(&tx, app, &spec, Some(&holder)).await?;
    let (token, secret) = insert_token(&tx, app, user.id, SERVICE_PREFIX, name, &spec).await?;
    audit::record(
        &tx,
        meta,
        app.now(),
        Event {
            organization_id: Some(membership.organization_id),
            actor: actor_of(principal),
            action: "api_token.create",
            target: Some(("ApiToken", token.id)),
            details: json!({ "name": token.name, "serviceAccount": user.id, "keychainId": token.keychain_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}
