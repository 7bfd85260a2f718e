//! Outgoing mail: every message is first written to the outbox table in the transaction that
//! causes it, so nothing is lost; a worker delivers pending messages over SMTP when one is
//! configured, retrying failures with backoff.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::store::entities::mail_outbox;

use super::error::{DomainError, DomainResult};
use super::{App, new_id};

/// Give up on a message after this many failed attempts.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a worker may hold a message it is sending before another may retry it.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// A message to queue.
pub struct Outgoing<'a> {
    pub recipient: &'a str,
    pub subject: String,
    pub body: String,
    pub kind: &'a str,
    pub invitation_id: Option<Uuid>,
    /// For mail to a subscriber contact: its one-click unsubscribe address, contact and category.
    pub listed: Option<Listed>,
}

/// What a mail to a subscriber contact carries besides its text.
pub struct Listed {
    pub unsubscribe_url: String,
    pub contact_id: Uuid,
    pub category: String,
}

/// Queues a message inside the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>, message: Outgoing<'_>) -> DomainResult<()> {
    row(now, message).insert(conn).await?;
    Ok(())
}

/// Queues many messages in a few statements, inside the caller's transaction.
pub async fn enqueue_all<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    messages: Vec<Outgoing<'_>>,
) -> DomainResult<()> {
    let mut chunk: Vec<mail_outbox::ActiveModel> = Vec::with_capacity(100);
    for message in messages {
        chunk.push(row(now, message));
        if chunk.len() == 100 {
            mail_outbox::Entity::insert_many(std::mem::take(&mut chunk))
                .exec_without_returning(conn)
                .await?;
        }
    }
    if !chunk.is_empty() {
        mail_outbox::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

fn row(now: DateTime<Utc>, message: Outgoing<'_>) -> mail_outbox::ActiveModel {
    let (unsubscribe_url, contact_id, category) = match message.listed {
        Some(listed) => (
            Some(listed.unsubscribe_url),
            Some(listed.contact_id),
            Some(listed.category),
        ),
        None => (None, None, None),
    };
    mail_outbox::ActiveModel {
        id: Set(new_id()),
        recipient: Set(message.recipient.to_owned()),
        subject: Set(message.subject),
        body: Set(message.body),
        kind: Set(message.kind.to_owned()),
        invitation_id: Set(message.invitation_id),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        unsubscribe_url: Set(unsubscribe_url),
        contact_id: Set(contact_id),
        category: Set(category),
    }
}

/// SMTP delivery settings.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// e.g. `smtps://user:password@mail.example.com` or `smtp://localhost:2525`.
    pub url: String,
    pub from: String,
}

/// Runs until the process ends: delivers due messages every few seconds.
pub fn spawn_worker(app: Arc<App>, settings: SmtpSettings) -> DomainResult<tokio::task::JoinHandle<()>> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
        .map_err(|e| DomainError::Internal(format!("invalid SMTP URL: {e}")))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| DomainError::Internal(format!("invalid sender address: {e}")))?;
    Ok(tokio::spawn(async move {
        loop {
            if let Err(err) = deliver_due(&app, &transport, &from).await {
                tracing::warn!(error = %err, "mail delivery round failed");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }))
}

/// Delivers every due message once; returns how many were sent.
pub async fn deliver_due(
    app: &App,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) -> DomainResult<usize> {
    let now = app.now();
    let due = mail_outbox::Entity::find()
        .filter(mail_outbox::Column::SentAt.is_null())
        .filter(mail_outbox::Column::NextAttemptAt.lte(now))
        .filter(mail_outbox::Column::Attempts.lt(MAX_ATTEMPTS))
        .order_by_asc(mail_outbox::Column::Id)
        .limit(20)
        .all(&app.store.conn)
        .await?;
    let mut sent = 0;
    for message in due {
        // Claim a lease so that another process does not send the same message meanwhile.
        let claimed = mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(now + LEASE))
            .filter(mail_outbox::Column::Id.eq(message.id))
            .filter(mail_outbox::Column::NextAttemptAt.eq(message.next_attempt_at))
            .exec(&app.store.conn)
            .await?;
        if claimed.rows_affected != 1 {
            continue;
        }
        let result = match message.recipient.parse::<Mailbox>() {
            Ok(to) => match with_unsubscribe(
                Message::builder().from(from.clone()).to(to),
                message.unsubscribe_url.as_deref(),
            )
            .subject(message.subject.clone())
            .body(message.body.clone())
            {
                Ok(email) => transport.send(email).await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let mut update = mail_outbox::Entity::update_many()
            .col_expr(mail_outbox::Column::Attempts, Expr::value(message.attempts + 1))
            .filter(mail_outbox::Column::Id.eq(message.id));
        match result {
            Ok(()) => {
                sent += 1;
                app.store.metrics.mail_delivery(true);
                // Once delivered, the link is no longer needed at rest.
                update = update
                    .col_expr(mail_outbox::Column::SentAt, Expr::value(app.now()))
                    .col_expr(mail_outbox::Column::Body, Expr::value(redact_links(&message.body)))
                    .col_expr(mail_outbox::Column::UnsubscribeUrl, Expr::value(None::<String>));
            }
            Err(error) => {
                let backoff = chrono::Duration::seconds(30 * 2_i64.pow(message.attempts.clamp(0, 10) as u32));
                app.store.metrics.mail_delivery(false);
                tracing::warn!(message_id = %message.id, attempts = message.attempts + 1, "mail delivery failed");
                update = update
                    .col_expr(mail_outbox::Column::NextAttemptAt, Expr::value(app.now() + backoff))
                    .col_expr(
                        mail_outbox::Column::LastError,
                        Expr::value(error.chars().take(500).collect::<String>()),
                    );
            }
        }
        update.exec(&app.store.conn).await?;
    }
    Ok(sent)
}

/// RFC 2369 and RFC 8058 headers: mail programs offer a one-click unsubscribe that POSTs to
/// the address without opening a page.
fn with_unsubscribe(builder: lettre::message::MessageBuilder, url: Option<&str>) -> lettre::message::MessageBuilder {
    use lettre::message::header::{HeaderName, HeaderValue};
    let Some(url) = url else {
        return builder;
    };
    let header = |name: &str, value: String| {
        HeaderValue::new(
            HeaderName::new_from_ascii(name.to_owned()).expect("a valid header name"),
            value,
        )
    };
    builder
        .raw_header(header("List-Unsubscribe", format!("<{url}>")))
        .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()))
}

/// Messages not delivered: still to be tried, and given up on after every attempt.
pub async fn outbox_depth<C: ConnectionTrait>(conn: &C) -> DomainResult<(u64, u64)> {
    use sea_orm::PaginatorTrait;
    let undelivered = || mail_outbox::Entity::find().filter(mail_outbox::Column::SentAt.is_null());
    let pending = undelivered()
        .filter(mail_outbox::Column::Attempts.lt(MAX_ATTEMPTS))
        .count(conn)
        .await?;
    let failed = undelivered()
        .filter(mail_outbox::Column::Attempts.gte(MAX_ATTEMPTS))
        .count(conn)
        .await?;
    Ok((pending, failed))
}

/// Removes the secret part (the query string) of every link of a delivered message.
pub fn redact_links(body: &str) -> String {
    body.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| match word.split_once("?token=") {
                    Some((base, _)) if word.starts_with("http") => format!("{base}?token=<redacted>"),
                    _ => word.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
