//! Mutations on teams: the team itself, who is in it, and the roles it holds.
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use crate::domain::bindings::Terms;
use crate::domain::teams as team_service;

use super::context::{app, principal, state};
use super::error::ApiResult;
use super::ids::{self, NodeKind};
use super::types::{Membership, Team};

/// A new team of an organization.
#[derive(InputObject)]
pub struct CreateTeamInput {
    /// The organization the team belongs to.
    pub organization_id: ID,
    /// 1 to 100 characters, unique in the organization regardless of case.
    pub name: String,
    /// What the team is for, at most 1,000 characters; empty when omitted.
    pub description: Option<String>,
}

/// The result of `createTeam`.
#[derive(SimpleObject)]
pub struct CreateTeamPayload {
    /// The team as created, with no members and no roles.
    pub team: Team,
}

/// Changes to a team; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTeamInput {
    /// The team to change.
    pub team_id: ID,
    /// A new name, 1 to 100 characters, unique in the organization regardless of case.
    pub name: Option<String>,
    /// A new description, at most 1,000 characters.
    pub description: Option<String>,
}

/// The result of `updateTeam`.
#[derive(SimpleObject)]
pub struct UpdateTeamPayload {
    /// The team after the change.
    pub team: Team,
}

/// The team to delete.
#[derive(InputObject)]
pub struct DeleteTeamInput {
    /// The team to delete; its members lose the roles they held through it.
    pub team_id: ID,
}

/// The result of `deleteTeam`.
#[derive(SimpleObject)]
pub struct DeleteTeamPayload {
    /// The global ID the deleted team had.
    pub deleted_team_id: ID,
}

/// A member to add to a team.
#[derive(InputObject)]
pub struct AddTeamMemberInput {
    /// The team.
    pub team_id: ID,
    /// A membership of the team's organization (a person's or a service account's).
    pub membership_id: ID,
}

/// The result of `addTeamMember`.
#[derive(SimpleObject)]
pub struct AddTeamMemberPayload {
    /// The team after the change.
    pub team: Team,
    /// The member, now holding the team's roles through it.
    pub membership: Membership,
}

/// A member to take out of a team.
#[derive(InputObject)]
pub struct RemoveTeamMemberInput {
    /// The team.
    pub team_id: ID,
    /// The member to take out; a member may always take themself out.
    pub membership_id: ID,
}

/// The result of `removeTeamMember`.
#[derive(SimpleObject)]
pub struct RemoveTeamMemberPayload {
    /// The team after the change.
    pub team: Team,
    /// The member, no longer holding the team's roles.
    pub membership: Membership,
}

/// A role to bind to a team.
#[derive(InputObject)]
pub struct GrantTeamRoleInput {
    /// The team whose members will hold the role through it.
    pub team_id: ID,
    /// A built-in role or a custom role of the team's organization; never `owner`, which is
    /// held by people only.
    pub role_id: ID,
    /// A workspace of the organization; `null` for organization-wide.
    pub workspace_id: Option<ID>,
    /// When the grant ends, in the future; omitted or `null` for a grant that lasts until it is
    /// revoked. From that instant every decision ignores it; it is then removed and
    /// `role.expire` recorded.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it is granted, at most 500 characters; shown on the binding and in the audit log.
    pub reason: Option<String>,
}

/// The result of `grantTeamRole`.
#[derive(SimpleObject)]
pub struct GrantTeamRolePayload {
    /// The team, with its role bindings after the change.
    pub team: Team,
}

/// A team's role binding to revoke.
#[derive(InputObject)]
pub struct RevokeTeamRoleInput {
    /// The team holding the role.
    pub team_id: ID,
    /// The role to revoke.
    pub role_id: ID,
    /// The workspace it was granted in; `null` for organization-wide.
    pub workspace_id: Option<ID>,
}

/// The result of `revokeTeamRole`.
#[derive(SimpleObject)]
pub struct RevokeTeamRolePayload {
    /// The team, with its role bindings after the change.
    pub team: Team,
}

/// Mutations on teams.
#[derive(Default)]
pub struct TeamMutations;

fn decode_opt(field: &str, kind: NodeKind, id: &Option<ID>) -> ApiResult<Option<uuid::Uuid>> {
    Ok(id.as_ref().map(|id| ids::decode(field, kind, id)).transpose()?)
}

#[Object]
impl TeamMutations {
    /// Creates a team with no members and no roles (`teams.manage`), within the plan's team
    /// limit.
    pub(crate) async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization, the name and the description.")] input: CreateTeamInput,
    ) -> ApiResult<CreateTeamPayload> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, &input.organization_id)?;
        let team = team_service::create(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            organization_id,
            &input.name,
            input.description.as_deref(),
        )
        .await?;
        Ok(CreateTeamPayload { team: Team(team) })
    }

    /// Renames a team or changes its description (`teams.manage`).
    pub(crate) async fn update_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and what changes.")] input: UpdateTeamInput,
    ) -> ApiResult<UpdateTeamPayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let team = team_service::update(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            team_id,
            input.name.as_deref(),
            input.description.as_deref(),
        )
        .await?;
        Ok(UpdateTeamPayload { team: Team(team) })
    }

    /// Deletes a team (`teams.manage`, and the right to revoke each of its roles: its members
    /// lose them).
    pub(crate) async fn delete_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team to delete.")] input: DeleteTeamInput,
    ) -> ApiResult<DeleteTeamPayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let deleted = team_service::delete(app(ctx), &state(ctx).meta, principal(ctx)?, team_id).await?;
        Ok(DeleteTeamPayload {
            deleted_team_id: ids::encode(NodeKind::Team, deleted),
        })
    }

    /// Adds a member to a team (`teams.manage`, and the right to grant each of the team's roles
    /// to them, for as long as the team holds it: nobody joins a team holding a key the one
    /// adding them lacks). Counts against the admin limit when the team holds an admin-class
    /// role organization-wide.
    pub(crate) async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and the member.")] input: AddTeamMemberInput,
    ) -> ApiResult<AddTeamMemberPayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let membership_id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
        let (team, membership) =
            team_service::add_member(app(ctx), &state(ctx).meta, principal(ctx)?, team_id, membership_id).await?;
        Ok(AddTeamMemberPayload {
            team: Team(team),
            membership: Membership(membership),
        })
    }

    /// Takes a member out of a team: the member themself, or a holder of `teams.manage` with the
    /// right to revoke each of the team's roles.
    pub(crate) async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and the member.")] input: RemoveTeamMemberInput,
    ) -> ApiResult<RemoveTeamMemberPayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let membership_id = ids::decode("membershipId", NodeKind::Membership, &input.membership_id)?;
        let (team, membership) =
            team_service::remove_member(app(ctx), &state(ctx).meta, principal(ctx)?, team_id, membership_id).await?;
        Ok(RemoveTeamMemberPayload {
            team: Team(team),
            membership: Membership(membership),
        })
    }

    /// Binds a role to a team, organization-wide or in one workspace: every member holds it
    /// through the team (`roles.assign` and every key of the role there, as for `grantRole`;
    /// owner-granted roles by owners only; never `owner`).
    pub(crate) async fn grant_team_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team, the role and where it applies.")] input: GrantTeamRoleInput,
    ) -> ApiResult<GrantTeamRolePayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
        let workspace_id = decode_opt("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
        let terms = Terms {
            expires_at: input.expires_at,
            reason: input.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
            recovery: false,
        };
        let team = team_service::grant_role(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            team_id,
            role_id,
            workspace_id,
            &terms,
        )
        .await?;
        Ok(GrantTeamRolePayload { team: Team(team) })
    }

    /// Revokes a team's role at a scope (`roles.assign` and every key of the role there).
    pub(crate) async fn revoke_team_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team, the role and where it was granted.")] input: RevokeTeamRoleInput,
    ) -> ApiResult<RevokeTeamRolePayload> {
        let team_id = ids::decode("teamId", NodeKind::Team, &input.team_id)?;
        let role_id = ids::decode("roleId", NodeKind::Role, &input.role_id)?;
        let workspace_id = decode_opt("workspaceId", NodeKind::Workspace, &input.workspace_id)?;
        let team = team_service::revoke_role(
            app(ctx),
            &state(ctx).meta,
            principal(ctx)?,
            team_id,
            role_id,
            workspace_id,
        )
        .await?;
        Ok(RevokeTeamRolePayload { team: Team(team) })
    }
}
