//! Live updates over a websocket (`graphql-transport-ws`, or the older `graphql-ws`).
//!
//! A subscription waits on the store's write clock: a commit of this process moves it at once,
//! one of another process (or made by hand) once the store reads the database's change clock,
//! which it does every `--change-poll-ms` while anyone is subscribed. On each move (and at least
//! every [`HEARTBEAT`]) the subscription checks the caller's credential and access again, from
//! the database: a revoked token, an ended session, a removed member or a lost key ends it.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::domain::access::{self, MemberAccess};
use crate::domain::{self, App, DomainError, Principal, audit};
use crate::store::entities::audit_events;

use super::context::{app, principal};
use super::error::{ApiError, ApiResult};
use super::ids::{self, NodeKind};
use super::types::AuditEvent;

/// Longest a subscription waits without checking its caller again.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How far back `organizationEvents` reads again on each change: an event whose transaction
/// committed late (its id and time were taken when it began) still arrives once.
const EVENT_LOOKBACK: Duration = Duration::from_secs(30);
/// Events read at once.
const EVENT_BATCH: u64 = 200;

/// The credential a websocket connection signed in with, kept to check it again as a
/// subscription runs (`None`: anonymous).
#[derive(Clone, Debug, Default)]
pub struct Credential(pub Option<Arc<str>>);

/// The viewer's keys in one organization, as a change left them.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct ViewerAccessChange {
    /// The organization's global ID.
    pub organization_id: ID,
    /// Whether the viewer is a member. When `false` the keys are empty and the subscription ends.
    pub member: bool,
    /// Keys the viewer holds organization-wide, as `Organization.viewerKeys` lists them.
    pub keys: Vec<String>,
    /// Keys the viewer holds inside each workspace where a workspace-scoped grant gives more
    /// than `keys`.
    pub workspaces: Vec<WorkspaceKeys>,
}

/// The viewer's keys inside one workspace.
#[derive(Clone, Debug, PartialEq, Eq, SimpleObject)]
pub struct WorkspaceKeys {
    /// The workspace's global ID.
    pub workspace_id: ID,
    /// Every key held there (organization-wide ones included).
    pub keys: Vec<String>,
}

/// The subscription root.
#[derive(Default)]
pub struct SubscriptionRoot;

/// Live updates; subscribe over a websocket at `/graphql` (`graphql-transport-ws`).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The viewer's keys in an organization: first as they are now, then again whenever a grant,
    /// revoke, role or keychain edit, removal or plan change alters them. Ends after announcing
    /// `member: false`, or with UNAUTHENTICATED when the credential stops being valid.
    async fn viewer_access_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization to watch.")] organization_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<ViewerAccessChange>>> {
        let watch = Watch::start(ctx, &organization_id).await?;
        if watch.access().await?.is_none() {
            return Err(ApiError(DomainError::NotFound("organization")).into());
        }
        let last: Option<ViewerAccessChange> = None;
        Ok(futures_util::stream::unfold(
            (watch, true, last, false),
            |(mut watch, first, last, done)| async move {
                if done {
                    return None;
                }
                loop {
                    if !first_or_wait(&mut watch, first).await {
                        return Some((Err(watch.failure()), (watch, false, last, true)));
                    }
                    let change = match watch.access().await {
                        Ok(access) => watch.describe(access.as_ref()),
                        Err(err) => return Some((Err(err), (watch, false, last, true))),
                    };
                    if last.as_ref() == Some(&change) {
                        // Something else changed: the viewer's keys did not.
                        continue;
                    }
                    let ended = !change.member;
                    return Some((Ok(change.clone()), (watch, false, Some(change), ended)));
                }
            },
        )
        .map(|item| item.map_err(async_graphql::Error::from))
        .boxed())
    }

    /// The organization's audit events as they are recorded, to holders of `audit.read`. Ends
    /// with FORBIDDEN when the viewer loses the key or the organization, and with
    /// UNAUTHENTICATED when the credential stops being valid.
    async fn organization_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization whose audit log to follow.")] organization_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<AuditEvent>>> {
        let watch = Watch::start(ctx, &organization_id).await?;
        watch.require_audit_read().await?;
        let mut events = EventCursor::new();
        // Only what is recorded from now on: the log itself pages through the past.
        events.scan(&watch, false).await?;
        Ok(
            futures_util::stream::unfold((watch, events, false), |(mut watch, mut events, done)| async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(event) = events.queue.pop_front() {
                        return Some((Ok(AuditEvent(event)), (watch, events, false)));
                    }
                    if !first_or_wait(&mut watch, false).await {
                        return Some((Err(watch.failure()), (watch, events, true)));
                    }
                    if let Err(err) = watch.require_audit_read().await {
                        return Some((Err(err), (watch, events, true)));
                    }
                    if let Err(err) = events.scan(&watch, true).await {
                        return Some((Err(err), (watch, events, true)));
                    }
                }
            })
            .map(|item| item.map_err(async_graphql::Error::from))
            .boxed(),
        )
    }
}

/// Returns at once the first time; otherwise waits for a change (or the heartbeat) and checks
/// the credential again. `false` when it no longer holds.
async fn first_or_wait(watch: &mut Watch, first: bool) -> bool {
    if first {
        return true;
    }
    watch.wait().await;
    watch.reauthenticate().await
}

/// What one subscription watches, and as whom.
struct Watch {
    app: Arc<App>,
    credential: Credential,
    principal: Principal,
    organization_id: Uuid,
    moved: tokio::sync::watch::Receiver<u64>,
    /// Why the credential stopped holding, once it did.
    failed: Option<ApiError>,
}

impl Watch {
    async fn start(ctx: &Context<'_>, organization_id: &ID) -> ApiResult<Watch> {
        let organization_id = ids::decode("organizationId", NodeKind::Organization, organization_id)?;
        let app = app(ctx).clone();
        let principal = principal(ctx)?.clone();
        let credential = ctx.data_opt::<Credential>().cloned().unwrap_or_default();
        // Watching starts before the first read, so no change after that read is missed.
        let moved = app.store.writes.watch();
        Ok(Watch {
            app,
            credential,
            principal,
            organization_id,
            moved,
            failed: None,
        })
    }

    async fn wait(&mut self) {
        // A closed channel cannot happen while the store lives; the heartbeat bounds the wait.
        let _ = tokio::time::timeout(HEARTBEAT, self.moved.changed()).await;
    }

    async fn reauthenticate(&mut self) -> bool {
        let Some(bearer) = self.credential.0.clone() else {
            return true;
        };
        match domain::authenticate(&self.app, &bearer).await {
            Ok(principal) => {
                self.principal = principal;
                true
            }
            Err(err) => {
                self.failed = Some(ApiError(err));
                false
            }
        }
    }

    fn failure(&mut self) -> ApiError {
        self.failed
            .take()
            .unwrap_or_else(|| ApiError(DomainError::unauthenticated()))
    }

    /// The caller's access read from the database now.
    async fn access(&self) -> ApiResult<Option<MemberAccess>> {
        Ok(access::for_principal(&self.app.store.conn, &self.app, &self.principal, self.organization_id).await?)
    }

    async fn require_audit_read(&self) -> ApiResult<()> {
        let access = self
            .access()
            .await?
            .ok_or(ApiError(DomainError::NotFound("organization")))?;
        access.require(&self.app, "audit.read", None)?;
        Ok(())
    }

    fn describe(&self, access: Option<&MemberAccess>) -> ViewerAccessChange {
        let organization_id = ids::encode(NodeKind::Organization, self.organization_id);
        let Some(access) = access else {
            return ViewerAccessChange {
                organization_id,
                member: false,
                keys: Vec::new(),
                workspaces: Vec::new(),
            };
        };
        let app = &self.app;
        let organization_wide = access.keys_at(app, None);
        let mut scoped: Vec<Uuid> = access.bindings.iter().filter_map(|b| b.binding.workspace_id).collect();
        scoped.sort_unstable();
        scoped.dedup();
        let workspaces = scoped
            .into_iter()
            .filter_map(|workspace| {
                let keys = access.keys_at(app, Some(workspace));
                (keys != organization_wide).then(|| WorkspaceKeys {
                    workspace_id: ids::encode(NodeKind::Workspace, workspace),
                    keys: app.catalog.names(&keys),
                })
            })
            .collect();
        ViewerAccessChange {
            organization_id,
            member: true,
            keys: app.catalog.names(&organization_wide),
            workspaces,
        }
    }
}

/// Where `organizationEvents` is in the log.
struct EventCursor {
    /// Events from this time on are read.
    since: DateTime<Utc>,
    /// Events sent (or skipped) that are still inside the lookback window, with their times.
    sent: HashMap<Uuid, DateTime<Utc>>,
    queue: VecDeque<audit_events::Model>,
}

impl EventCursor {
    fn new() -> EventCursor {
        EventCursor {
            since: Utc::now() - EVENT_LOOKBACK,
            sent: HashMap::new(),
            queue: VecDeque::new(),
        }
    }

    /// Reads the events since the cursor, page by page; queues the ones not sent yet when
    /// `send` (the first scan only marks what exists as seen).
    async fn scan(&mut self, watch: &Watch, send: bool) -> ApiResult<()> {
        let mut from = self.since;
        let mut newest = None;
        loop {
            let page = audit::occurred_since(&watch.app, watch.organization_id, from, EVENT_BATCH).await?;
            let full = page.len() as u64 == EVENT_BATCH;
            for event in page {
                from = event.occurred_at;
                newest = Some(event.occurred_at);
                if self.sent.insert(event.id, event.occurred_at).is_none() && send {
                    self.queue.push_back(event);
                }
            }
            if !full {
                break;
            }
        }
        if let Some(newest) = newest {
            self.since = self.since.max(newest - EVENT_LOOKBACK);
            let since = self.since;
            // What fell out of the window is never read again.
            self.sent.retain(|_, at| *at >= since);
        }
        Ok(())
    }
}
