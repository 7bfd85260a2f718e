//! Mutations of the access model: workspaces, roles, keychains, bindings, roles documents.
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use crate::domain::bindings;
use crate::domain::definitions::{self, KeychainInput, RoleInput};
use crate::domain::documents::{self, ItemKind, Mode};
use crate::domain::workspaces::{self as workspace_service, CreateWorkspace, UpdateWorkspace};

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::objects::{DocumentFormat, Keychain, Membership, Role, RoleScope, Workspace};

/// Workspaces, roles, keychains and role bindings.
#[derive(Default)]
pub struct AccessMutations;

/// Maps the API's role scope to the catalog's.
fn authz_scope(scope: RoleScope) -> crate::authz::RoleScope {
    match scope {
        RoleScope::Organization => crate::authz::RoleScope::Organization,
        RoleScope::Workspace => crate::authz::RoleScope::Workspace,
        RoleScope::Any => crate::authz::RoleScope::Any,
    }
}

fn decode_many(field: &str, kind: NodeKind, ids: &[ID]) -> ApiResult<Vec<uuid::Uuid>> {
    Ok(ids
        .iter()
        .map(|id| ids::decode(field, kind, id))
        .collect::<Result<Vec<_>, _>>()?)
}

fn decode_opt(field: &str, kind: NodeKind, id: &Option<ID>) -> ApiResult<Option<uuid::Uuid>> {
    Ok(id.as_ref().map(|id| ids::decode(field, kind, id)).transpose()?)
}

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    pub organization_id: ID,
    pub name: String,
    /// `[a-z0-9-]{3,40}`, unique in the organization.
    pub slug: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateWorkspaceInput {
    pub workspace_id: ID,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteWorkspaceInput {
    pub workspace_id: ID,
}

#[derive(SimpleObject)]
pub struct WorkspacePayload {
    pub workspace: Workspace,
}

#[derive(SimpleObject)]
pub struct DeleteWorkspacePayload {
    pub deleted_workspace_id: ID,
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    /// Built-in keychains or the organization's own.
    #[graphql(default)]
    pub keychain_ids: Vec<ID>,
    /// Keys granted directly.
    #[graphql(default)]
    pub keys: Vec<String>,
    /// Where it may be bound; ANY by default.
    pub scope: Option<RoleScope>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    pub role_id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the role's keychains when given.
    pub keychain_ids: Option<Vec<ID>>,
    /// Replaces the role's direct keys when given.
    pub keys: Option<Vec<String>>,
    pub scope: Option<RoleScope>,
}

#[derive(InputObject)]
pub struct DeleteRoleInput {
    pub role_id: ID,
}

#[derive(SimpleObject)]
pub struct RolePayload {
    pub role: Role,
}

#[derive(SimpleObject)]
pub struct DeleteRolePayload {
    pub deleted_role_id: ID,
}

#[derive(InputObject)]
pub struct CreateKeychainInput {
    pub organization_id: ID,
    pub name: String,
    pub description: Option<String>,
    #[graphql(default)]
    pub keys: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateKeychainInput {
    pub keychain_id: ID,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the keychain's keys when given.
    pub keys: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct DeleteKeychainInput {
    pub keychain_id: ID,
}

#[derive(SimpleObject)]
pub struct KeychainPayload {
    pub keychain: Keychain,
}

#[derive(SimpleObject)]
pub struct DeleteKeychainPayload {
    pub deleted_keychain_id: ID,
}

#[derive(InputObject)]
pub struct KeychainAssignmentInput {
    pub keychain_id: ID,
    pub role_id: ID,
}

#[derive(SimpleObject)]
pub struct KeychainAssignmentPayload {
    pub keychain: Keychain,
    pub role: Role,
}

#[derive(InputObject)]
pub struct RoleBindingChangeInput {
    pub membership_id: ID,
    pub role_id: ID,
    /// `null` for organization-wide.
    pub workspace_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct RoleBindingChangePayload {
    pub membership: Membership,
}

/// MERGE creates and updates what the document names; REPLACE also deletes what it does not.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImportMode {
    Merge,
    Replace,
}

#[derive(InputObject)]
pub struct ImportRolesInput {
    pub organization_id: ID,
    pub document: String,
    pub format: DocumentFormat,
    #[graphql(default_with = "ImportMode::Merge")]
    pub mode: ImportMode,
    /// Run every check and report the changes without keeping them.
    #[graphql(default)]
    pub dry_run: bool,
}

/// What a roles document entry is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RolesDocumentItemKind {
    Role,
    Keychain,
}

/// One role or keychain named in an import report.
#[derive(SimpleObject)]
pub struct RolesDocumentItem {
    pub kind: RolesDocumentItemKind,
    pub name: String,
}

#[derive(SimpleObject)]
pub struct ImportRolesPayload {
    pub created: Vec<RolesDocumentItem>,
    pub updated: Vec<RolesDocumentItem>,
    pub deleted: Vec<RolesDocumentItem>,
    pub unchanged: Vec<RolesDocumentItem>,
    /// True when nothing was written.
    pub dry_run: bool,
}

fn items(list: Vec<(ItemKind, String)>) -> Vec<RolesDocumentItem> {
    list.into_iter()
        .map(|(kind, name)| RolesDocumentItem {
            kind: match kind {
                ItemKind::Role => RolesDocumentItemKind::Role,
                ItemKind::Keychain => RolesDocumentItemKind::Keychain,
            },
            name,
        })
        .collect()
}

#[Object]
impl AccessMutations {
    /// Creates a workspace (`workspaces.manage`).
    async fn create_workspace(&self, ctx: &Context<'_>, input: CreateWorkspaceInput) -> ApiResult<WorkspacePayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let workspace = workspace_service::create(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            CreateWorkspace {
                organization_id,
                name: input.name,
                slug: input.slug,
                description: input.description,
            },
        )
        .await?;
        Ok(WorkspacePayload {
            workspace: Workspace(workspace),
        })
    }

    /// Changes a workspace (`workspaces.manage` in it).
    async fn update_workspace(&self, ctx: &Context<'_>, input: UpdateWorkspaceInput) -> ApiResult<WorkspacePayload> {
        let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
        let workspace = workspace_service::update(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            UpdateWorkspace {
                workspace_id,
                name: input.name,
                slug: input.slug,
                description: input.description,
            },
        )
        .await?;
        Ok(WorkspacePayload {
            workspace: Workspace(workspace),
        })
    }

    /// Deletes a workspace and the role bindings inside it (`workspaces.manage` in it).
    async fn delete_workspace(
        &self,
        ctx: &Context<'_>,
        input: DeleteWorkspaceInput,
    ) -> ApiResult<DeleteWorkspacePayload> {
        let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
        workspace_service::delete(app(ctx), &state(ctx).meta, principal(ctx)?, workspace_id).await?;
        state(ctx).invalidate_access();
        Ok(DeleteWorkspacePayload {
            deleted_workspace_id: input.workspace_id,
        })
    }

    /// Creates a custom role (`roles.manage`), holding only keys the caller holds.
    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> ApiResult<RolePayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let keychain_ids = decode_many("keychainIds", NodeKind::Keychain, &input.keychain_ids)?;
        let role = definitions::create_role(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            RoleInput {
                name: Some(input.name),
                description: input.description,
                keychain_ids: Some(keychain_ids),
                keys: Some(input.keys),
                scope: input.scope.map(authz_scope),
            },
        )
        .await?;
        Ok(RolePayload { role: Role::of(role) })
    }

    /// Changes a custom role (`roles.manage`); built-in roles cannot change.
    async fn update_role(&self, ctx: &Context<'_>, input: UpdateRoleInput) -> ApiResult<RolePayload> {
        let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
        let keychain_ids = input
            .keychain_ids
            .as_deref()
            .map(|ids| decode_many("keychainIds", NodeKind::Keychain, ids))
            .transpose()?;
        let role = definitions::update_role(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            role_id,
            RoleInput {
                name: input.name,
                description: input.description,
                keychain_ids,
                keys: input.keys,
                scope: input.scope.map(authz_scope),
            },
        )
        .await?;
        state(ctx).invalidate_access();
        Ok(RolePayload { role: Role::of(role) })
    }

    /// Deletes a custom role nobody holds and no pending invitation offers (`roles.manage`).
    async fn delete_role(&self, ctx: &Context<'_>, input: DeleteRoleInput) -> ApiResult<DeleteRolePayload> {
        let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
        definitions::delete_role(app(ctx), &state(ctx).meta, principal(ctx)?, role_id).await?;
        Ok(DeleteRolePayload {
            deleted_role_id: input.role_id,
        })
    }

    /// Imports a roles document atomically (`roles.manage` and `keychains.manage`).
    async fn import_roles(&self, ctx: &Context<'_>, input: ImportRolesInput) -> ApiResult<ImportRolesPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let document = documents::parse(&input.document, input.format.into())?;
        let mode = match input.mode {
            ImportMode::Merge => Mode::Merge,
            ImportMode::Replace => Mode::Replace,
        };
        let report = documents::import(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &document,
            mode,
            input.dry_run,
        )
        .await?;
        state(ctx).invalidate_access();
        Ok(ImportRolesPayload {
            created: items(report.created),
            updated: items(report.updated),
            deleted: items(report.deleted),
            unchanged: items(report.unchanged),
            dry_run: input.dry_run,
        })
    }

    /// Creates a custom keychain (`keychains.manage`), holding only keys the caller holds.
    async fn create_keychain(&self, ctx: &Context<'_>, input: CreateKeychainInput) -> ApiResult<KeychainPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let keychain = definitions::create_keychain(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            KeychainInput {
                name: Some(input.name),
                description: input.description,
                keys: Some(input.keys),
            },
        )
        .await?;
        Ok(KeychainPayload {
            keychain: Keychain(keychain),
        })
    }

    /// Changes a custom keychain (`keychains.manage`); built-in keychains cannot change.
    async fn update_keychain(&self, ctx: &Context<'_>, input: UpdateKeychainInput) -> ApiResult<KeychainPayload> {
        let keychain_id = ids::decode("keychainId", NodeKind::Keychain, &input.keychain_id)?;
        let keychain = definitions::update_keychain(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            keychain_id,
            KeychainInput {
                name: input.name,
                description: input.description,
                keys: input.keys,
            },
        )
        .await?;
        state(ctx).invalidate_access();
        Ok(KeychainPayload {
            keychain: Keychain(keychain),
        })
    }

    /// Deletes a custom keychain no role uses (`keychains.manage`).
    async fn delete_keychain(&self, ctx: &Context<'_>, input: DeleteKeychainInput) -> ApiResult<DeleteKeychainPayload> {
        let keychain_id = ids::decode("keychainId", NodeKind::Keychain, &input.keychain_id)?;
        definitions::delete_keychain(app(ctx), &state(ctx).meta, principal(ctx)?, keychain_id).await?;
        Ok(DeleteKeychainPayload {
            deleted_keychain_id: input.keychain_id,
        })
    }

    /// Adds a keychain to a custom role (`keychains.assign`, holding every key of the keychain).
    async fn assign_keychain_to_role(
        &self,
        ctx: &Context<'_>,
        input: KeychainAssignmentInput,
    ) -> ApiResult<KeychainAssignmentPayload> {
        assignment(ctx, input, true).await
    }

    /// Removes a keychain from a custom role (`keychains.assign`, holding every key of the keychain).
    async fn unassign_keychain_from_role(
        &self,
        ctx: &Context<'_>,
        input: KeychainAssignmentInput,
    ) -> ApiResult<KeychainAssignmentPayload> {
        assignment(ctx, input, false).await
    }

    /// Grants a role (`roles.assign` and every key of the role at that scope).
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        input: RoleBindingChangeInput,
    ) -> ApiResult<RoleBindingChangePayload> {
        binding_change(ctx, input, true).await
    }

    /// Revokes a role (`roles.assign` and every key of the role at that scope).
    async fn revoke_role(
        &self,
        ctx: &Context<'_>,
        input: RoleBindingChangeInput,
    ) -> ApiResult<RoleBindingChangePayload> {
        binding_change(ctx, input, false).await
    }
}

async fn assignment(
    ctx: &Context<'_>,
    input: KeychainAssignmentInput,
    assigned: bool,
) -> ApiResult<KeychainAssignmentPayload> {
    let keychain_id = ids::decode("keychainId", NodeKind::Keychain, &input.keychain_id)?;
    let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
    let (keychain, role) = definitions::set_keychain_assignment(
        app(ctx),
        &state(ctx).meta,
        principal(ctx)?,
        keychain_id,
        role_id,
        assigned,
    )
    .await?;
    state(ctx).invalidate_access();
    Ok(KeychainAssignmentPayload {
        keychain: Keychain(keychain),
        role: Role::of(role),
    })
}

async fn binding_change(
    ctx: &Context<'_>,
    input: RoleBindingChangeInput,
    grant: bool,
) -> ApiResult<RoleBindingChangePayload> {
    let membership_id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
    let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
    let workspace_id = decode_opt("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
    let (app, meta, principal) = (app(ctx), &state(ctx).meta, principal(ctx)?);
    let membership = if grant {
        bindings::grant_role(app, meta, principal, membership_id, role_id, workspace_id).await?
    } else {
        bindings::revoke_role(app, meta, principal, membership_id, role_id, workspace_id).await?
    };
    state(ctx).invalidate_access();
    Ok(RoleBindingChangePayload {
        membership: Membership(membership),
    })
}
