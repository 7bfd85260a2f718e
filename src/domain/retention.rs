//! Retention: rows that have served their purpose are removed on a schedule, so no table grows
//! forever. Each table is pruned in batches of at most [`Policy::batch`] rows, one short
//! statement each, so no lock is held for long and readers and writers go on meanwhile; several
//! server processes may prune at once (a row deleted twice is deleted once).
//!
//! What goes, and when:
//! - audit events older than `--audit-retention-days` (0 keeps them forever; export them first
//!   with `guildhall audit export`);
//! - failed sign-ins once they are outside the window that counts them;
//! - refresh tokens once expired (until then a rotated one is kept: presenting it again is how
//!   reuse is detected);
//! - invitations that were never accepted, `--invitation-retention-days` after they expired (an
//!   accepted one stays: it records who invited the member);
//! - mail delivered, or given up on, more than `--mail-retention-days` ago;
//! - accounts whose address was never verified, `--unverified-account-days` after sign-up (one
//!   that joined an organization meanwhile stays);
//! - mailed account links (password reset, address proofs) a day after they expired, and
//!   sign-ins that waited for a second factor once they expired.
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Query};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::store::entities::{
    account_tokens, audit_events, external_identities, invitations, login_challenges, login_failures, mail_outbox,
    memberships, refresh_tokens, users,
};

use super::App;
use super::error::DomainResult;

/// What is kept, and how much is removed per statement.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `None`: audit events are kept forever.
    pub audit: Option<Duration>,
    pub invitations: Duration,
    pub mail: Duration,
    /// How long an account whose address was never verified is kept.
    pub unverified_accounts: Duration,
    /// Rows removed by one statement.
    pub batch: u64,
    /// Pause between two batches, so a long prune leaves room for other writers.
    pub pause: StdDuration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            audit: Some(Duration::days(365)),
            invitations: Duration::days(30),
            mail: Duration::days(30),
            unverified_accounts: Duration::days(7),
            batch: 1_000,
            pause: StdDuration::from_millis(20),
        }
    }
}

/// Rows removed by one prune, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub audit_events: u64,
    pub login_failures: u64,
    pub refresh_tokens: u64,
    pub invitations: u64,
    pub mail: u64,
    pub unverified_accounts: u64,
    pub account_tokens: u64,
    pub login_challenges: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.audit_events
            + self.login_failures
            + self.refresh_tokens
            + self.invitations
            + self.mail
            + self.unverified_accounts
            + self.account_tokens
            + self.login_challenges
    }
}

/// Deletes the rows of `E` matching `condition`, `policy.batch` at a time (by primary key
/// `id`), until none is left; returns how many went.
async fn prune_table<E>(app: &App, policy: &Policy, id: E::Column, condition: Condition) -> DomainResult<u64>
where
    E: EntityTrait + Default,
{
    let batch = policy.batch.max(1);
    let mut removed = 0;
    loop {
        let ids = Query::select()
            .column(id)
            .from(E::default())
            .cond_where(condition.clone())
            .limit(batch)
            .to_owned();
        // The condition again on the rows deleted: a row changed since the subquery chose it
        // (an account verified that instant) is left alone.
        let result = E::delete_many()
            .filter(id.in_subquery(ids))
            .filter(condition.clone())
            .exec(&app.store.conn)
            .await?;
        removed += result.rows_affected;
        if result.rows_affected < batch {
            return Ok(removed);
        }
        tokio::time::sleep(policy.pause).await;
    }
}

/// Removes what the policy no longer keeps, as of `now`.
pub async fn prune(app: &App, policy: &Policy, now: DateTime<Utc>) -> DomainResult<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(keep) = policy.audit {
        pruned.audit_events = prune_table::<audit_events::Entity>(
            app,
            policy,
            audit_events::Column::Id,
            Condition::all().add(audit_events::Column::OccurredAt.lt(now - keep)),
        )
        .await?;
    }
    pruned.login_failures = prune_table::<login_failures::Entity>(
        app,
        policy,
        login_failures::Column::Id,
        Condition::all().add(login_failures::Column::OccurredAt.lt(now - app.settings.login_failure_window)),
    )
    .await?;
    pruned.refresh_tokens = prune_table::<refresh_tokens::Entity>(
        app,
        policy,
        refresh_tokens::Column::Id,
        Condition::all().add(refresh_tokens::Column::ExpiresAt.lt(now)),
    )
    .await?;
    pruned.invitations = prune_table::<invitations::Entity>(
        app,
        policy,
        invitations::Column::Id,
        Condition::all()
            .add(invitations::Column::ExpiresAt.lt(now - policy.invitations))
            .add(invitations::Column::Status.ne("ACCEPTED")),
    )
    .await?;
    let mail_cutoff = now - policy.mail;
    pruned.mail = prune_table::<mail_outbox::Entity>(
        app,
        policy,
        mail_outbox::Column::Id,
        Condition::any().add(mail_outbox::Column::SentAt.lt(mail_cutoff)).add(
            Condition::all()
                .add(mail_outbox::Column::SentAt.is_null())
                .add(mail_outbox::Column::Attempts.gte(super::mailer::MAX_ATTEMPTS))
                .add(mail_outbox::Column::CreatedAt.lt(mail_cutoff)),
        ),
    )
    .await?;
    let members = Query::select()
        .column(memberships::Column::UserId)
        .from(memberships::Entity)
        .to_owned();
    pruned.unverified_accounts = if policy.unverified_accounts <= Duration::zero() {
        // 0 keeps them, as it keeps audit events.
        0
    } else {
        prune_table::<users::Entity>(
            app,
            policy,
            users::Column::Id,
            Condition::all()
                .add(users::Column::Kind.eq("HUMAN"))
                .add(users::Column::EmailVerifiedAt.is_null())
                .add(users::Column::CreatedAt.lt(now - policy.unverified_accounts))
                .add(users::Column::Id.not_in_subquery(members))
                // A provider's person without an address was never asked to verify one.
                .add(
                    users::Column::Id.not_in_subquery(
                        Query::select()
                            .column(external_identities::Column::UserId)
                            .from(external_identities::Entity)
                            .to_owned(),
                    ),
                ),
        )
        .await?
    };
    pruned.account_tokens = prune_table::<account_tokens::Entity>(
        app,
        policy,
        account_tokens::Column::Id,
        Condition::all().add(account_tokens::Column::ExpiresAt.lt(now - Duration::days(1))),
    )
    .await?;
    pruned.login_challenges = prune_table::<login_challenges::Entity>(
        app,
        policy,
        login_challenges::Column::Id,
        Condition::all().add(login_challenges::Column::ExpiresAt.lt(now)),
    )
    .await?;
    Ok(pruned)
}

/// Prunes every `interval` until the process ends (the first round a minute after start).
pub fn spawn(app: std::sync::Arc<App>, policy: Policy, interval: StdDuration) -> tokio::task::JoinHandle<()> {
    let app = std::sync::Arc::downgrade(&app);
    tokio::spawn(async move {
        tokio::time::sleep(interval.min(StdDuration::from_secs(60))).await;
        loop {
            let Some(app) = app.upgrade() else { return };
            match prune(&app, &policy, app.now()).await {
                Ok(pruned) if pruned.total() > 0 => tracing::info!(?pruned, "pruned rows past retention"),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "pruning rows past retention"),
            }
            drop(app);
            tokio::time::sleep(interval).await;
        }
    })
}
