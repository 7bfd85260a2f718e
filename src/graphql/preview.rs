//! `previewRoleChange`: a change run through its own mutation, rolled back, and reported as who
//! gains and loses which keys (see [`crate::domain::preview`]).
use async_graphql::{Context, ID, Object, OneofObject, SimpleObject};

use crate::domain::preview::{self, Change};

use super::context::{app, member_access};
use super::error::{ApiError, ApiResult};
use super::ids::{self, NodeKind};
use super::mutation_access::{
    AccessMutations, AssignKeychainToRoleInput, DeleteKeychainInput, DeleteRoleInput, GrantRoleInput, ImportRolesInput,
    RevokeRoleInput, UnassignKeychainFromRoleInput, UpdateKeychainInput, UpdateRoleInput,
};
use super::mutation_members::{MemberMutations, RemoveMemberInput};
use super::mutation_teams::{
    AddTeamMemberInput, DeleteTeamInput, GrantTeamRoleInput, RemoveTeamMemberInput, RevokeTeamRoleInput, TeamMutations,
};
use super::types::{Membership, Workspace};

/// The change to preview: exactly one of these, with the input its mutation takes.
#[derive(OneofObject)]
pub enum RoleChangeInput {
    /// What `grantRole` would do.
    GrantRole(GrantRoleInput),
    /// What `revokeRole` would do.
    RevokeRole(RevokeRoleInput),
    /// What `updateRole` would do.
    UpdateRole(UpdateRoleInput),
    /// What `deleteRole` would do.
    DeleteRole(DeleteRoleInput),
    /// What `updateKeychain` would do.
    UpdateKeychain(UpdateKeychainInput),
    /// What `deleteKeychain` would do.
    DeleteKeychain(DeleteKeychainInput),
    /// What `assignKeychainToRole` would do.
    AssignKeychainToRole(AssignKeychainToRoleInput),
    /// What `unassignKeychainFromRole` would do.
    UnassignKeychainFromRole(UnassignKeychainFromRoleInput),
    /// What `removeMember` would do.
    RemoveMember(RemoveMemberInput),
    /// What `importRoles` would do (its `dryRun` is ignored: a preview never writes).
    ImportRoles(ImportRolesInput),
    /// What `grantTeamRole` would do.
    GrantTeamRole(GrantTeamRoleInput),
    /// What `revokeTeamRole` would do.
    RevokeTeamRole(RevokeTeamRoleInput),
    /// What `addTeamMember` would do.
    AddTeamMember(AddTeamMemberInput),
    /// What `removeTeamMember` would do.
    RemoveTeamMember(RemoveTeamMemberInput),
    /// What `deleteTeam` would do.
    DeleteTeam(DeleteTeamInput),
}

/// Who would gain and who would lose which keys.
#[derive(SimpleObject)]
pub struct RoleChangeImpact {
    /// One entry per principal and scope whose keys change, in membership order,
    /// organization-wide first; empty when the change changes nobody's keys.
    pub changes: Vec<AccessChange>,
    /// How many members and service accounts gain at least one key.
    pub gaining: u64,
    /// How many lose at least one key.
    pub losing: u64,
}

impl RoleChangeImpact {
    pub fn of(app: &crate::domain::App, changes: Vec<Change>) -> RoleChangeImpact {
        let count = |pick: fn(&Change) -> bool| {
            let mut ids: Vec<uuid::Uuid> = changes.iter().filter(|c| pick(c)).map(|c| c.membership.id).collect();
            ids.dedup();
            ids.len() as u64
        };
        RoleChangeImpact {
            gaining: count(|c| !c.gained.is_empty()),
            losing: count(|c| !c.lost.is_empty()),
            changes: changes
                .into_iter()
                .map(|c| AccessChange {
                    gained: app.catalog.names(&c.gained),
                    lost: app.catalog.names(&c.lost),
                    membership: Membership(c.membership),
                    workspace_id: c.workspace_id,
                })
                .collect(),
        }
    }
}

/// One principal's change of keys at one scope.
pub struct AccessChange {
    membership: Membership,
    workspace_id: Option<uuid::Uuid>,
    gained: Vec<String>,
    lost: Vec<String>,
}

/// One principal's change of keys at one scope.
#[Object]
impl AccessChange {
    /// The member or service account.
    async fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The workspace; `null` for organization-wide. A workspace is listed only where its change
    /// differs from what the member's organization-wide change means there (a key kept there
    /// through a workspace binding, or changed there alone), and then with its whole change.
    async fn workspace(&self, ctx: &Context<'_>) -> ApiResult<Option<Workspace>> {
        Workspace::load(ctx, self.workspace_id).await
    }

    /// Keys the principal would hold there and does not now.
    async fn gained(&self) -> &[String] {
        &self.gained
    }

    /// Keys the principal holds there now and would not.
    async fn lost(&self) -> &[String] {
        &self.lost
    }
}

/// A mutation method's answer without its payload: its own error, coded as the mutation answers
/// it (the method returns its `ApiResult` inside the resolver's result).
fn settle<T>(answer: ApiResult<T>) -> async_graphql::Result<()> {
    answer.map(drop).map_err(Into::into)
}

/// Runs the change through its own mutation inside a preview of the organization.
pub async fn run(
    ctx: &Context<'_>,
    organization_id: &ID,
    change: RoleChangeInput,
) -> async_graphql::Result<RoleChangeImpact> {
    let organization = ids::decode("organizationId", NodeKind::Organization, organization_id).map_err(ApiError)?;
    let app = app(ctx);
    member_access(ctx, organization)
        .await?
        .require(app, "members.read", None)
        .map_err(ApiError)?;
    let access = AccessMutations;
    let members = MemberMutations;
    let teams = TeamMutations;
    let work = async {
        match change {
            RoleChangeInput::GrantRole(input) => Box::pin(access.grant_role(ctx, input)).await.and_then(settle),
            RoleChangeInput::RevokeRole(input) => Box::pin(access.revoke_role(ctx, input)).await.and_then(settle),
            RoleChangeInput::UpdateRole(input) => Box::pin(access.update_role(ctx, input)).await.and_then(settle),
            RoleChangeInput::DeleteRole(input) => Box::pin(access.delete_role(ctx, input)).await.and_then(settle),
            RoleChangeInput::UpdateKeychain(input) => {
                Box::pin(access.update_keychain(ctx, input)).await.and_then(settle)
            }
            RoleChangeInput::DeleteKeychain(input) => {
                Box::pin(access.delete_keychain(ctx, input)).await.and_then(settle)
            }
            RoleChangeInput::AssignKeychainToRole(input) => Box::pin(access.assign_keychain_to_role(ctx, input))
                .await
                .and_then(settle),
            RoleChangeInput::UnassignKeychainFromRole(input) => {
                Box::pin(access.unassign_keychain_from_role(ctx, input))
                    .await
                    .and_then(settle)
            }
            RoleChangeInput::RemoveMember(input) => Box::pin(members.remove_member(ctx, input)).await.and_then(settle),
            RoleChangeInput::ImportRoles(mut input) => {
                input.dry_run = false;
                Box::pin(access.import_roles(ctx, input)).await.and_then(settle)
            }
            RoleChangeInput::GrantTeamRole(input) => Box::pin(teams.grant_team_role(ctx, input)).await.and_then(settle),
            RoleChangeInput::RevokeTeamRole(input) => {
                Box::pin(teams.revoke_team_role(ctx, input)).await.and_then(settle)
            }
            RoleChangeInput::AddTeamMember(input) => Box::pin(teams.add_team_member(ctx, input)).await.and_then(settle),
            RoleChangeInput::RemoveTeamMember(input) => {
                Box::pin(teams.remove_team_member(ctx, input)).await.and_then(settle)
            }
            RoleChangeInput::DeleteTeam(input) => Box::pin(teams.delete_team(ctx, input)).await.and_then(settle),
        }
    };
    let _turn = super::context::state(ctx).previews.lock().await;
    let ((), changes) = Box::pin(preview::preview(app, organization, Box::pin(work))).await?;
    Ok(RoleChangeImpact::of(app, changes))
}
