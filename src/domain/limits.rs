//! Plan limits (invariant 7): how many admins, members, custom roles, custom keychains and
//! workspaces an organization of each plan may have. The numbers are configuration.
use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::entities::{invitations, keychains, memberships, roles, teams, workspaces};

use super::App;
use super::error::{DomainError, DomainResult};

/// One plan's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Members holding an admin-class key organization-wide (owners and admins, and any
    /// custom role carrying such a key).
    pub admins: u64,
    /// Members plus pending invitations.
    pub members: u64,
    pub custom_roles: u64,
    pub custom_keychains: u64,
    pub workspaces: u64,
    /// Owners the organization must keep (at least the catalog's minimum for `owner`): the last
    /// of them cannot leave, be removed or lose the role.
    #[serde(default = "one_owner")]
    pub min_owners: u64,
    /// Teams of the organization.
    #[serde(default = "hundred_teams")]
    pub teams: u64,
}

fn one_owner() -> u64 {
    1
}

fn hundred_teams() -> u64 {
    100
}

/// Limits per plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanLimits(pub BTreeMap<String, Limits>);

impl Default for PlanLimits {
    fn default() -> Self {
        let plan = |admins, members, custom_roles, custom_keychains, workspaces, teams| Limits {
            admins,
            members,
            custom_roles,
            custom_keychains,
            workspaces,
            min_owners: 1,
            teams,
        };
        PlanLimits(BTreeMap::from([
            ("FREE".to_owned(), plan(3, 25, 10, 10, 5, 5)),
            ("TEAM".to_owned(), plan(10, 500, 50, 50, 50, 100)),
            ("ENTERPRISE".to_owned(), plan(100, 100_000, 500, 500, 1_000, 1_000)),
        ]))
    }
}

impl PlanLimits {
    /// Defaults overridden by a JSON document such as `{"FREE": {"members": 50, ...}}`.
    pub fn from_json(text: &str) -> Result<PlanLimits, String> {
        let overrides: BTreeMap<String, Limits> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut limits = PlanLimits::default();
        for (plan, value) in overrides {
            if !limits.0.contains_key(&plan) {
                return Err(format!("unknown plan `{plan}`"));
            }
            limits.0.insert(plan, value);
        }
        Ok(limits)
    }

    pub fn for_plan(&self, plan: &str) -> Limits {
        self.0.get(plan).copied().unwrap_or(Limits {
            admins: 0,
            members: 0,
            custom_roles: 0,
            custom_keychains: 0,
            workspaces: 0,
            min_owners: 1,
            teams: 0,
        })
    }
}

/// The countable things of an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Admins,
    Members,
    CustomRoles,
    CustomKeychains,
    Workspaces,
    Teams,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::Admins => "admins",
            Limit::Members => "members",
            Limit::CustomRoles => "customRoles",
            Limit::CustomKeychains => "customKeychains",
            Limit::Workspaces => "workspaces",
            Limit::Teams => "teams",
        }
    }

    fn of(self, limits: &Limits) -> u64 {
        match self {
            Limit::Admins => limits.admins,
            Limit::Members => limits.members,
            Limit::CustomRoles => limits.custom_roles,
            Limit::CustomKeychains => limits.custom_keychains,
            Limit::Workspaces => limits.workspaces,
            Limit::Teams => limits.teams,
        }
    }
}

/// Current use of a limit.
pub async fn used<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid, limit: Limit) -> DomainResult<u64> {
    Ok(match limit {
        Limit::Admins => super::grant_rule::admin_holders(conn, app, organization_id)
            .await?
            .len() as u64,
        Limit::Members => {
            let members = memberships::Entity::find()
                .filter(memberships::Column::OrganizationId.eq(organization_id))
                .count(conn)
                .await?;
            let pending = invitations::Entity::find()
                .filter(invitations::Column::OrganizationId.eq(organization_id))
                .filter(invitations::Column::Status.eq("PENDING"))
                .filter(invitations::Column::ExpiresAt.gt(app.now()))
                .count(conn)
                .await?;
            members + pending
        }
        Limit::CustomRoles => {
            roles::Entity::find()
                .filter(roles::Column::OrganizationId.eq(organization_id))
                .count(conn)
                .await?
        }
        Limit::CustomKeychains => {
            keychains::Entity::find()
                .filter(keychains::Column::OrganizationId.eq(organization_id))
                .count(conn)
                .await?
        }
        Limit::Workspaces => {
            workspaces::Entity::find()
                .filter(workspaces::Column::OrganizationId.eq(organization_id))
                .count(conn)
                .await?
        }
        Limit::Teams => {
            teams::Entity::find()
                .filter(teams::Column::OrganizationId.eq(organization_id))
                .count(conn)
                .await?
        }
    })
}

/// The limit for an organization's plan.
pub fn limit_for(app: &App, plan: &str, limit: Limit) -> u64 {
    limit.of(&app.settings.plan_limits.for_plan(plan))
}

/// LIMIT_EXCEEDED naming the limit unless `adding` more fit. Call inside the write transaction,
/// after the organization is locked, so concurrent additions cannot both squeeze in.
pub async fn ensure_room<C: ConnectionTrait>(
    conn: &C,
    app: &App,
    organization_id: Uuid,
    plan: &str,
    limit: Limit,
    adding: u64,
) -> DomainResult<()> {
    let current = used(conn, app, organization_id, limit).await?;
    check_room(app, plan, limit, current, adding)
}

/// LIMIT_EXCEEDED naming the limit unless `adding` more fit beside `current` (counted by the
/// caller, inside its transaction).
pub fn check_room(app: &App, plan: &str, limit: Limit, current: u64, adding: u64) -> DomainResult<()> {
    let max = limit_for(app, plan, limit);
    if current + adding > max {
        return Err(DomainError::LimitExceeded {
            limit: limit.name().to_owned(),
            message: format!(
                "the {plan} plan allows {max} {what}; this organization has {current}",
                what = limit.name()
            ),
        });
    }
    Ok(())
}
