//! Mutations of the access model: workspaces, roles, keychains, bindings, roles documents.
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use crate::domain::bindings;
use crate::domain::definitions::{self, KeychainInput, RoleInput};
use crate::domain::documents::{self, ItemKind, Mode};
use crate::domain::workspaces::{self as workspace_service, CreateWorkspace, UpdateWorkspace};

use super::context::{app, member_access, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::{DocumentFormat, Keychain, Membership, Role, RoleScope, Workspace};

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

/// A new workspace of an organization.
#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    /// The organization to create it in.
    pub organization_id: ID,
    /// The display name, 1 to 100 characters.
    pub name: String,
    /// `[a-z0-9-]{3,40}`, unique in the organization.
    pub slug: String,
    /// What it is for, at most 1,000 characters; empty when omitted.
    pub description: Option<String>,
}

/// Changes to a workspace; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWorkspaceInput {
    /// The workspace to change.
    pub workspace_id: ID,
    /// A new display name, 1 to 100 characters.
    pub name: Option<String>,
    /// A new slug, `[a-z0-9-]{3,40}`, unique in the organization.
    pub slug: Option<String>,
    /// A new description, at most 1,000 characters.
    pub description: Option<String>,
}

/// The workspace to delete.
#[derive(InputObject)]
pub struct DeleteWorkspaceInput {
    /// The workspace to delete.
    pub workspace_id: ID,
}

per_mutation! {
    SimpleObject,
    /// A created or changed workspace.
    WorkspacePayload {
        /// The workspace after the change.
        workspace: Workspace,
    }
    /// The result of `createWorkspace`.
    CreateWorkspacePayload,
    /// The result of `updateWorkspace`.
    UpdateWorkspacePayload,
}

/// The result of `deleteWorkspace`.
#[derive(SimpleObject)]
pub struct DeleteWorkspacePayload {
    /// The global ID the deleted workspace had.
    pub deleted_workspace_id: ID,
}

/// A new custom role of an organization.
#[derive(InputObject)]
pub struct CreateRoleInput {
    /// The organization the role belongs to.
    pub organization_id: ID,
    /// 1 to 100 characters, unique in the organization and not the name of a built-in role.
    pub name: String,
    /// What the role is for, at most 1,000 characters; empty when omitted.
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

/// Changes to a custom role; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateRoleInput {
    /// The custom role to change.
    pub role_id: ID,
    /// A new name, 1 to 100 characters, unique in the organization.
    pub name: Option<String>,
    /// A new description, at most 1,000 characters.
    pub description: Option<String>,
    /// Replaces the role's keychains when given.
    pub keychain_ids: Option<Vec<ID>>,
    /// Replaces the role's direct keys when given.
    pub keys: Option<Vec<String>>,
    /// Where the role may be bound from now on.
    pub scope: Option<RoleScope>,
}

/// The custom role to delete.
#[derive(InputObject)]
pub struct DeleteRoleInput {
    /// The custom role to delete.
    pub role_id: ID,
}

per_mutation! {
    SimpleObject,
    /// A created or changed role.
    RolePayload {
        /// The role after the change.
        role: Role,
    }
    /// The result of `createRole`.
    CreateRolePayload,
    /// The result of `updateRole`.
    UpdateRolePayload,
}

/// The result of `deleteRole`.
#[derive(SimpleObject)]
pub struct DeleteRolePayload {
    /// The global ID the deleted role had.
    pub deleted_role_id: ID,
}

/// A new custom keychain of an organization.
#[derive(InputObject)]
pub struct CreateKeychainInput {
    /// The organization the keychain belongs to.
    pub organization_id: ID,
    /// 1 to 100 characters, unique in the organization and not the name of a built-in keychain.
    pub name: String,
    /// What the keychain is for, at most 1,000 characters; empty when omitted.
    pub description: Option<String>,
    /// The keys it holds; the caller must hold each of them.
    #[graphql(default)]
    pub keys: Vec<String>,
}

/// Changes to a custom keychain; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateKeychainInput {
    /// The custom keychain to change.
    pub keychain_id: ID,
    /// A new name, 1 to 100 characters, unique in the organization.
    pub name: Option<String>,
    /// A new description, at most 1,000 characters.
    pub description: Option<String>,
    /// Replaces the keychain's keys when given.
    pub keys: Option<Vec<String>>,
}

/// The custom keychain to delete.
#[derive(InputObject)]
pub struct DeleteKeychainInput {
    /// The custom keychain to delete.
    pub keychain_id: ID,
}

per_mutation! {
    SimpleObject,
    /// A created or changed keychain.
    KeychainPayload {
        /// The keychain after the change.
        keychain: Keychain,
    }
    /// The result of `createKeychain`.
    CreateKeychainPayload,
    /// The result of `updateKeychain`.
    UpdateKeychainPayload,
}

/// The result of `deleteKeychain`.
#[derive(SimpleObject)]
pub struct DeleteKeychainPayload {
    /// The global ID the deleted keychain had.
    pub deleted_keychain_id: ID,
}

per_mutation! {
    InputObject,
    /// A keychain and a custom role.
    KeychainAssignmentInput {
        /// A built-in keychain or a custom keychain of the role's organization.
        keychain_id: ID,
        /// A custom role.
        role_id: ID,
    }
    /// A keychain and the custom role to add it to.
    AssignKeychainToRoleInput,
    /// A keychain and the custom role to remove it from.
    UnassignKeychainFromRoleInput,
}

per_mutation! {
    SimpleObject,
    /// The keychain and the role after the change.
    KeychainAssignmentPayload {
        /// The keychain added or removed.
        keychain: Keychain,
        /// The role after the change.
        role: Role,
    }
    /// The result of `assignKeychainToRole`.
    AssignKeychainToRolePayload,
    /// The result of `unassignKeychainFromRole`.
    UnassignKeychainFromRolePayload,
}

per_mutation! {
    InputObject,
    /// A role binding: a member, a role and a scope.
    RoleBindingChangeInput {
        /// The member whose roles change.
        membership_id: ID,
        /// A built-in role or a custom role of the member's organization.
        role_id: ID,
        /// `null` for organization-wide.
        workspace_id: Option<ID>,
    }
    /// The role binding to revoke: a member, a role and the scope it was granted at.
    RevokeRoleInput,
}

/// The role binding to grant: a member, a role, a scope, and for a grant that ends, when.
#[derive(async_graphql::InputObject)]
pub struct GrantRoleInput {
    /// The member whose roles change.
    pub membership_id: ID,
    /// A built-in role or a custom role of the member's organization.
    pub role_id: ID,
    /// `null` for organization-wide.
    pub workspace_id: Option<ID>,
    /// When the grant ends, in the future; omitted or `null` for a grant that lasts until it is
    /// revoked. From that instant every decision ignores it; it is then removed and
    /// `role.expire` recorded. Never for `owner`.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it is granted, at most 500 characters; shown on the binding and in the audit log.
    pub reason: Option<String>,
}

per_mutation! {
    SimpleObject,
    /// The member after a grant or revoke.
    RoleBindingChangePayload {
        /// The member, with their role bindings after the change.
        membership: Membership,
    }
    /// The result of `grantRole`.
    GrantRolePayload,
    /// The result of `revokeRole`.
    RevokeRolePayload,
}

/// MERGE creates and updates what the document names; REPLACE also deletes what it does not.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Create and update the custom roles and keychains the document names; keep the others.
    Merge,
    /// Like MERGE, and also delete the custom roles and keychains the document does not name.
    Replace,
}

/// A roles document to import into an organization.
#[derive(InputObject)]
pub struct ImportRolesInput {
    /// The organization whose custom roles and keychains change.
    pub organization_id: ID,
    /// The document, in the form `Organization.rolesDocument` exports.
    pub document: String,
    /// How `document` is written.
    pub format: DocumentFormat,
    /// Whether to keep (MERGE) or delete (REPLACE) what the document does not name.
    #[graphql(default_with = "ImportMode::Merge")]
    pub mode: ImportMode,
    /// Run every check and report the changes without keeping them.
    #[graphql(default)]
    pub dry_run: bool,
}

/// What a roles document entry is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RolesDocumentItemKind {
    /// A custom role.
    Role,
    /// A custom keychain.
    Keychain,
    /// A team (its roles and, when the document lists them, its members).
    Team,
}

/// One role or keychain named in an import report.
#[derive(SimpleObject)]
pub struct RolesDocumentItem {
    /// Whether it is a role or a keychain.
    pub kind: RolesDocumentItemKind,
    /// Its name.
    pub name: String,
}

/// What an import changed, or would change in a dry run.
#[derive(SimpleObject)]
pub struct ImportRolesPayload {
    /// Roles and keychains created.
    pub created: Vec<RolesDocumentItem>,
    /// Roles and keychains changed.
    pub updated: Vec<RolesDocumentItem>,
    /// Roles and keychains deleted (REPLACE only).
    pub deleted: Vec<RolesDocumentItem>,
    /// Roles and keychains the document names that already matched it.
    pub unchanged: Vec<RolesDocumentItem>,
    /// True when nothing was written.
    pub dry_run: bool,
    /// With `dryRun`: who would gain and lose which keys, as `previewRoleChange` reports it;
    /// `null` for an import that was written.
    pub impact: Option<super::preview::RoleChangeImpact>,
}

fn items(list: Vec<(ItemKind, String)>) -> Vec<RolesDocumentItem> {
    list.into_iter()
        .map(|(kind, name)| RolesDocumentItem {
            kind: match kind {
                ItemKind::Role => RolesDocumentItemKind::Role,
                ItemKind::Keychain => RolesDocumentItemKind::Keychain,
                ItemKind::Team => RolesDocumentItemKind::Team,
            },
            name,
        })
        .collect()
}

#[Object]
impl AccessMutations {
    /// Creates a workspace (`workspaces.manage`).
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, name, slug and description.")] input: CreateWorkspaceInput,
    ) -> ApiResult<CreateWorkspacePayload> {
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
        }
        .into())
    }

    /// Changes a workspace (`workspaces.manage` in it).
    async fn update_workspace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace and what to change.")] input: UpdateWorkspaceInput,
    ) -> ApiResult<UpdateWorkspacePayload> {
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
        }
        .into())
    }

    /// Deletes a workspace and the role bindings inside it (`workspaces.manage` in it).
    async fn delete_workspace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace to delete.")] input: DeleteWorkspaceInput,
    ) -> ApiResult<DeleteWorkspacePayload> {
        let workspace_id = ids::decode("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
        workspace_service::delete(app(ctx), &state(ctx).meta, principal(ctx)?, workspace_id).await?;
        Ok(DeleteWorkspacePayload {
            deleted_workspace_id: input.workspace_id,
        })
    }

    /// Creates a custom role (`roles.manage`), holding only keys the caller holds.
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and the new role.")] input: CreateRoleInput,
    ) -> ApiResult<CreateRolePayload> {
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
        Ok(RolePayload { role: Role::of(role) }.into())
    }

    /// Changes a custom role (`roles.manage`); built-in roles cannot change.
    pub(crate) async fn update_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role and what to change.")] input: UpdateRoleInput,
    ) -> ApiResult<UpdateRolePayload> {
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
        Ok(RolePayload { role: Role::of(role) }.into())
    }

    /// Deletes a custom role nobody holds and no pending invitation offers (`roles.manage`).
    pub(crate) async fn delete_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role to delete.")] input: DeleteRoleInput,
    ) -> ApiResult<DeleteRolePayload> {
        let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
        definitions::delete_role(app(ctx), &state(ctx).meta, principal(ctx)?, role_id).await?;
        Ok(DeleteRolePayload {
            deleted_role_id: input.role_id,
        })
    }

    /// Imports a roles document atomically (`roles.manage` and `keychains.manage`).
    pub(crate) async fn import_roles(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, the document and how to apply it.")] input: ImportRolesInput,
    ) -> ApiResult<ImportRolesPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let document = documents::parse(&input.document, input.format.into())?;
        let mode = match input.mode {
            ImportMode::Merge => Mode::Merge,
            ImportMode::Replace => Mode::Replace,
        };
        let import = Box::pin(documents::import(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &document,
            mode,
            false,
        ));
        // A dry run is the import itself, previewed: rolled back, with who would gain and lose what.
        let (report, impact) = if input.dry_run {
            // The impact shows who holds what: a member who may read the members, checked
            // before the preview reads the organization under the write lock.
            member_access(ctx, organization_id)
                .await?
                .require(app(ctx), "members.read", None)?;
            let (report, changes) =
                Box::pin(crate::domain::preview::preview(app(ctx), organization_id, import)).await?;
            (report, Some(super::preview::RoleChangeImpact::of(app(ctx), changes)))
        } else {
            (import.await?, None)
        };
        Ok(ImportRolesPayload {
            impact,
            created: items(report.created),
            updated: items(report.updated),
            deleted: items(report.deleted),
            unchanged: items(report.unchanged),
            dry_run: input.dry_run,
        })
    }

    /// Creates a custom keychain (`keychains.manage`), holding only keys the caller holds.
    async fn create_keychain(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and the new keychain.")] input: CreateKeychainInput,
    ) -> ApiResult<CreateKeychainPayload> {
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
            keychain: Keychain::from(keychain),
        }
        .into())
    }

    /// Changes a custom keychain (`keychains.manage`); built-in keychains cannot change.
    pub(crate) async fn update_keychain(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keychain and what to change.")] input: UpdateKeychainInput,
    ) -> ApiResult<UpdateKeychainPayload> {
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
        Ok(KeychainPayload {
            keychain: Keychain::from(keychain),
        }
        .into())
    }

    /// Deletes a custom keychain no role uses (`keychains.manage`).
    pub(crate) async fn delete_keychain(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keychain to delete.")] input: DeleteKeychainInput,
    ) -> ApiResult<DeleteKeychainPayload> {
        let keychain_id = ids::decode("keychainId", NodeKind::Keychain, &input.keychain_id)?;
        definitions::delete_keychain(app(ctx), &state(ctx).meta, principal(ctx)?, keychain_id).await?;
        Ok(DeleteKeychainPayload {
            deleted_keychain_id: input.keychain_id,
        })
    }

    /// Adds a keychain to a custom role (`keychains.assign`, holding every key of the keychain).
    pub(crate) async fn assign_keychain_to_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keychain and the role to add it to.")] input: AssignKeychainToRoleInput,
    ) -> ApiResult<AssignKeychainToRolePayload> {
        assignment(ctx, input.into(), true).await.map(Into::into)
    }

    /// Removes a keychain from a custom role (`keychains.assign`, holding every key of the keychain).
    pub(crate) async fn unassign_keychain_from_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The keychain and the role to remove it from.")] input: UnassignKeychainFromRoleInput,
    ) -> ApiResult<UnassignKeychainFromRolePayload> {
        assignment(ctx, input.into(), false).await.map(Into::into)
    }

    /// Grants a role (`roles.assign` and every key of the role at that scope).
    pub(crate) async fn grant_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member, the role and where it applies.")] input: GrantRoleInput,
    ) -> ApiResult<GrantRolePayload> {
        let terms = bindings::Terms {
            expires_at: input.expires_at,
            reason: input.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
            recovery: false,
        };
        let change = RoleBindingChangeInput {
            membership_id: input.membership_id,
            role_id: input.role_id,
            workspace_id: input.workspace_id,
        };
        binding_change(ctx, change, Some(terms)).await.map(Into::into)
    }

    /// Revokes a role (`roles.assign` and every key of the role at that scope).
    pub(crate) async fn revoke_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member, the role and where it was granted.")] input: RevokeRoleInput,
    ) -> ApiResult<RevokeRolePayload> {
        binding_change(ctx, input.into(), None).await.map(Into::into)
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
    Ok(KeychainAssignmentPayload {
        keychain: Keychain::from(keychain),
        role: Role::of(role),
    })
}

async fn binding_change(
    ctx: &Context<'_>,
    input: RoleBindingChangeInput,
    grant: Option<bindings::Terms>,
) -> ApiResult<RoleBindingChangePayload> {
    let membership_id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
    let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
    let workspace_id = decode_opt("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
    let (app, meta, principal) = (app(ctx), &state(ctx).meta, principal(ctx)?);
    let membership = if let Some(terms) = grant {
        bindings::grant_role(app, meta, principal, membership_id, role_id, workspace_id, &terms).await?
    } else {
        bindings::revoke_role(app, meta, principal, membership_id, role_id, workspace_id).await?
    };
    Ok(RoleBindingChangePayload {
        membership: Membership(membership),
    })
}
