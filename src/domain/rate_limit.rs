//! Attempt counters kept in the database, shared by every server process. Taking an attempt is
//! one atomic upsert that counts and answers at once, so concurrent attempts can never all pass
//! a check made before any of them was counted.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use super::error::{DomainError, DomainResult};

/// What is counted, and how many attempts a window allows.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub scope: &'static str,
    pub max: u64,
    pub window: Duration,
}

fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The subject a client address is counted under: an IPv4 address itself, an IPv6 address by
/// its /64 network (one subscriber is commonly handed a whole /64).
pub fn address_subject(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let segments = v6.segments();
            format!(
                "{:x}:{:x}:{:x}:{:x}::/64",
                segments[0], segments[1], segments[2], segments[3]
            )
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        _ => address.to_owned(),
    }
}

/// Counts one attempt and returns how many the current window now holds (this one included).
pub async fn count_attempt<C: ConnectionTrait>(
    conn: &C,
    limit: &Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> DomainResult<u64> {
    count_many(conn, limit, subject, now, 1).await
}

/// Counts `amount` units at once (mails of one send) and returns the window's total.
pub async fn count_many<C: ConnectionTrait>(
    conn: &C,
    limit: &Limit,
    subject: &str,
    now: DateTime<Utc>,
    amount: u64,
) -> DomainResult<u64> {
    let amount = amount.min(i64::MAX as u64) as i64;
    let backend = conn.get_database_backend();
    let now_s = now.timestamp();
    let expired_before = now_s - limit.window.num_seconds();
    let sql = placeholders(
        backend,
        "INSERT INTO rate_counters (scope, subject, window_start, count) VALUES (?, ?, ?, ?) \
         ON CONFLICT (scope, subject) DO UPDATE SET \
           count = CASE WHEN rate_counters.window_start <= ? THEN excluded.count ELSE rate_counters.count + excluded.count END, \
           window_start = CASE WHEN rate_counters.window_start <= ? THEN excluded.window_start ELSE rate_counters.window_start END \
         RETURNING count",
    );
    let values: Vec<Value> = vec![
        limit.scope.into(),
        subject.into(),
        now_s.into(),
        amount.into(),
        expired_before.into(),
        expired_before.into(),
    ];
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .ok_or_else(|| DomainError::Internal("the rate counter returned no row".to_owned()))?;
    let count: i64 = row.try_get("", "count")?;
    Ok(count.max(0) as u64)
}

/// Counts an attempt; RATE_LIMITED once the window holds more than the limit allows.
pub async fn take<C: ConnectionTrait>(conn: &C, limit: &Limit, subject: &str, now: DateTime<Utc>) -> DomainResult<()> {
    if count_attempt(conn, limit, subject, now).await? > limit.max {
        return Err(DomainError::RateLimited {
            retry_after_seconds: limit.window.num_seconds(),
        });
    }
    Ok(())
}

/// Gives one attempt back (a sign-in that turned out to be right costs nothing).
pub async fn give_back<C: ConnectionTrait>(conn: &C, limit: &Limit, subject: &str) -> DomainResult<()> {
    let backend = conn.get_database_backend();
    let sql = placeholders(
        backend,
        "UPDATE rate_counters SET count = count - 1 WHERE scope = ? AND subject = ? AND count > 0",
    );
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        vec![limit.scope.into(), subject.into()],
    ))
    .await?;
    Ok(())
}

/// Forgets a subject's attempts.
pub async fn reset<C: ConnectionTrait>(conn: &C, limit: &Limit, subject: &str) -> DomainResult<()> {
    let backend = conn.get_database_backend();
    let sql = placeholders(backend, "DELETE FROM rate_counters WHERE scope = ? AND subject = ?");
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        vec![limit.scope.into(), subject.into()],
    ))
    .await?;
    Ok(())
}
