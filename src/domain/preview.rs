//! Change previews: who gains and who loses which keys, at which scope, if a change were made.
//! A preview runs the real change — the same service function, checks, rule and writes — inside
//! a write transaction that is rolled back instead of committed ([`crate::store::dry_run`]). The
//! organization's access is read inside that transaction right after it begins and again at
//! what would be the commit, and the two are compared. So the preview of a refused change is the
//! same refusal, and the preview of an allowed one is what the change would do.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::authz::{self, Binding, Catalog, KeySet};
use crate::store::entities::{memberships, role_bindings};

use super::App;
use super::error::DomainResult;

/// What every member holds: their membership and their bindings in force, resolved to keys.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    members: BTreeMap<Uuid, (memberships::Model, Vec<Binding<Uuid>>)>,
}

/// One principal's change at one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub membership: memberships::Model,
    /// `None`: organization-wide. A workspace is listed only where its change differs from
    /// what the organization-wide change means there, and then with its whole change.
    pub workspace_id: Option<Uuid>,
    pub gained: KeySet,
    pub lost: KeySet,
}

/// Reads what every member of the organization holds, their own bindings and their teams', in
/// four statements.
pub async fn snapshot<C: ConnectionTrait>(conn: &C, app: &App, organization_id: Uuid) -> DomainResult<Snapshot> {
    let members = memberships::Entity::find()
        .filter(memberships::Column::OrganizationId.eq(organization_id))
        .all(conn)
        .await?;
    let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
    let bindings = if ids.is_empty() {
        Vec::new()
    } else {
        role_bindings::Entity::find()
            .filter(
                role_bindings::Column::MembershipId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(memberships::Column::Id)
                        .from(memberships::Entity)
                        .and_where(memberships::Column::OrganizationId.eq(organization_id))
                        .to_owned(),
                ),
            )
            .filter(super::bindings::in_force_at(app.now()))
            .all(conn)
            .await?
    };
    let now = app.now();
    let mut bindings = bindings;
    if !ids.is_empty() {
        bindings.extend(
            super::teams::held_through_teams_in(conn, organization_id)
                .await?
                .into_iter()
                .map(|(_, binding)| binding)
                .filter(|binding| super::bindings::in_force(binding, now)),
        );
    }
    let role_ids: Vec<Uuid> = bindings.iter().map(|b| b.role_id).collect();
    let keys = super::access::role_key_sets(conn, app, &role_ids).await?;
    let mut snapshot = Snapshot {
        members: members.into_iter().map(|m| (m.id, (m, Vec::new()))).collect(),
    };
    for binding in bindings {
        if let Some((_, list)) = snapshot.members.get_mut(&binding.membership_id) {
            list.push(Binding {
                keys: keys.get(&binding.role_id).copied().unwrap_or_default(),
                workspace: binding.workspace_id,
            });
        }
    }
    Ok(snapshot)
}

/// Every principal whose keys differ between the two snapshots, at every scope they differ,
/// in membership order, organization-wide first.
pub fn diff(catalog: &Catalog, before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let none: Vec<Binding<Uuid>> = Vec::new();
    let ids: BTreeSet<Uuid> = before.members.keys().chain(after.members.keys()).copied().collect();
    let mut changes = Vec::new();
    for id in ids {
        let (membership, was) = match (before.members.get(&id), after.members.get(&id)) {
            (Some((m, b)), _) => (m, b),
            (None, Some((m, _))) => (m, &none),
            (None, None) => continue,
        };
        let is = after.members.get(&id).map_or(&none, |(_, b)| b);
        let keys = |bindings: &Vec<Binding<Uuid>>, scope: Option<&Uuid>| authz::keys_at(catalog, bindings, scope);
        let (org_before, org_after) = (keys(was, None), keys(is, None));
        let org_gained = org_after.difference(&org_before);
        let org_lost = org_before.difference(&org_after);
        if !org_gained.is_empty() || !org_lost.is_empty() {
            changes.push(Change {
                membership: membership.clone(),
                workspace_id: None,
                gained: org_gained,
                lost: org_lost,
            });
        }
        // Organization-wide keys hold inside every workspace too, so the organization-wide
        // change is what each workspace inherits. A workspace is listed only where its change
        // differs from that (a key kept there through a workspace binding, or gained or lost
        // there alone), and then with its whole change, so that no entry reads "lost" for a
        // key still held there.
        let (inherited_gain, inherited_loss) = (org_gained, org_lost);
        let workspaces: BTreeSet<Uuid> = was.iter().chain(is.iter()).filter_map(|b| b.workspace).collect();
        for workspace in workspaces {
            let (ws_before, ws_after) = (keys(was, Some(&workspace)), keys(is, Some(&workspace)));
            let gained = ws_after.difference(&ws_before);
            let lost = ws_before.difference(&ws_after);
            if gained != inherited_gain || lost != inherited_loss {
                changes.push(Change {
                    membership: membership.clone(),
                    workspace_id: Some(workspace),
                    gained,
                    lost,
                });
            }
        }
    }
    changes
}

/// The hook that reads the organization at the start and the would-be end of the run.
struct Capture {
    app: Arc<App>,
    organization_id: Uuid,
    before: Mutex<Option<Snapshot>>,
    after: Mutex<Option<Snapshot>>,
}

fn as_db_error(error: super::DomainError) -> DbErr {
    DbErr::Custom(format!("reading access for a preview: {error}"))
}

#[async_trait::async_trait]
impl crate::store::DryRun for Capture {
    async fn began(&self, tx: &DatabaseTransaction) -> Result<(), DbErr> {
        if self.before.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Ok(());
        }
        let seen = snapshot(tx, &self.app, self.organization_id)
            .await
            .map_err(as_db_error)?;
        *self.before.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        Ok(())
    }

    async fn finishing(&self, tx: &DatabaseTransaction) -> Result<(), DbErr> {
        let seen = snapshot(tx, &self.app, self.organization_id)
            .await
            .map_err(as_db_error)?;
        *self.after.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        Ok(())
    }
}

/// Runs `change` as a preview against the organization: its own answer, and who would gain
/// and lose what. A refused change is refused here too; nothing is written either way.
pub async fn preview<T, E>(
    app: &Arc<App>,
    organization_id: Uuid,
    change: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(T, Vec<Change>), E> {
    let capture = Arc::new(Capture {
        app: app.clone(),
        organization_id,
        before: Mutex::new(None),
        after: Mutex::new(None),
    });
    let answer = crate::store::dry_run(capture.clone(), change).await?;
    let before = capture.before.lock().unwrap_or_else(|p| p.into_inner()).take();
    let after = capture.after.lock().unwrap_or_else(|p| p.into_inner()).take();
    let changes = match (before, after) {
        (Some(before), Some(after)) => diff(&app.catalog, &before, &after),
        // Nothing reached a commit: the change changes nothing.
        _ => Vec::new(),
    };
    Ok((answer, changes))
}
