//! Many servers on one PostgreSQL: throughput of one `guildhall serve` straight on PostgreSQL,
//! one behind PgBouncer (transaction pooling), and three behind the same PgBouncer taking
//! requests round-robin, each with 32 concurrent connections for a fixed time, reading a page
//! of an organization's members alone and under a stream of role changes; then the same with
//! nothing kept between requests (every request reads the database). Prints a table and
//! writes `benchmarks/results-pooled.json`.
//!
//! `GUILDHALL_TEST_PGBOUNCER=$(.ci/pgbouncer) cargo bench --bench pooled`; the PostgreSQL
//! cluster and PgBouncer are the bench's own (see `tests/api/cluster.rs`).
//! `GUILDHALL_BENCH_SECONDS` sets the time per workload (default 5).
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../tests/api/cluster.rs"]
mod cluster;

use cluster::{Cluster, Pooler, free_port};

const CONNECTIONS: usize = 32;
const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256-0123456789";
const PASSWORD: &str = "correct horse battery staple";
const PAGE: &str = "query($slug: String!) { organization(slug: $slug) { viewerKeys members(first: 50) { totalCount
  edges { node { id user { id name email } roleBindings { role { id name keychains { name } } } } } } } }";
const GRANT: &str = "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }";
const REVOKE: &str = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server; with `nothing_shared`, every request reads the database (no rows kept
/// between requests), for the cold figure.
async fn start(database_url: &str, listen_url: Option<&str>, nothing_shared: bool) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_guildhall"));
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .args(["--metrics-bind", "off", "--jwt-secret", SECRET, "--database-max-connections", "8"])
        .args(["--login-max-failures-per-address", "100000", "--sign-ups-per-address", "10000000"])
        .env("GUILDHALL_LOG", "warn")
        .env(
            "GUILDHALL_PLAN_LIMITS",
            r#"{"FREE": {"admins": 1000, "members": 1000000, "customRoles": 100, "customKeychains": 100, "workspaces": 100}}"#,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = listen_url {
        command.args(["--listen-database-url", url]);
    }
    if nothing_shared {
        command.arg("--no-shared-loads");
    }
    let child = command.spawn().expect("start guildhall");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, url }
}

/// The answer, or `{"transport": ...}` when none came (counted as an error by the readers).
async fn gql(client: &reqwest::Client, url: &str, token: &str, query: &str, variables: Value) -> Value {
    let response = client
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await;
    match response {
        Ok(response) => response
            .json()
            .await
            .unwrap_or_else(|e| json!({ "transport": e.to_string() })),
        Err(e) => json!({ "transport": e.to_string() }),
    }
}

fn raw(id: &str) -> uuid::Uuid {
    guildhall::graphql::ids::decode_any(&async_graphql::ID(id.to_owned()))
        .expect("global id")
        .1
}

struct Fixture {
    token: String,
    flipped_membership: String,
}

/// 20 organizations of 50 members, the benchmark's owner in each.
async fn fill(server: &Server, direct_url: &str) -> Fixture {
    let client = reqwest::Client::new();
    let post = |query: &'static str, variables: Value| {
        let client = client.clone();
        let url = format!("{}/graphql", server.url);
        async move {
            client
                .post(url)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    post(
        "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
        json!({ "i": { "email": "owner@example.com", "password": PASSWORD, "name": "Owner" } }),
    )
    .await;
    let verifier = guildhall::store::Store::connect(direct_url, 1).await.expect("store");
    // The owner's address counts as proved (the mailed link is not what is measured).
    sea_orm::ConnectionTrait::execute_unprepared(&verifier.conn, "UPDATE users SET email_verified_at = created_at")
        .await
        .expect("verify the owner");
    verifier.close().await;
    let signed = post(
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({ "i": { "email": "owner@example.com", "password": PASSWORD } }),
    )
    .await;
    let token = signed["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let store = guildhall::store::Store::connect(direct_url, 4).await.expect("store");
    let viewer = guildhall::domain::builtins::role_id("viewer");
    let mut flipped = None;
    for o in 0..20 {
        let body = gql(
            &client,
            &server.url,
            &token,
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": format!("Org {o}"), "slug": format!("org-{o:02}") } }),
        )
        .await;
        let id = raw(body["data"]["createOrganization"]["organization"]["id"]
            .as_str()
            .expect("org"));
        guildhall::store::fixtures::bulk_members(&store, id, 48, Some(viewer))
            .await
            .expect("members");
        if o == 0 {
            let member = guildhall::store::fixtures::bulk_members(&store, id, 1, None)
                .await
                .expect("member");
            flipped = Some(member[0]);
        } else {
            guildhall::store::fixtures::bulk_members(&store, id, 1, Some(viewer))
                .await
                .expect("member");
        }
    }
    store.close().await;
    Fixture {
        token,
        flipped_membership: guildhall::graphql::ids::encode(
            guildhall::graphql::ids::NodeKind::Membership,
            flipped.expect("flipped"),
        )
        .0,
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    setup: String,
    workload: String,
    requests: usize,
    errors: usize,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Role changes committed by the writer meanwhile (under writes only).
    writes: usize,
}

/// 32 readers over `urls` round-robin for `seconds`; `with_writes` adds one task flipping a
/// role binding through the servers in turn as fast as it can.
async fn drive(setup: &str, urls: &[String], fixture: &Fixture, seconds: u64, with_writes: bool) -> Measured {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    let urls = Arc::new(urls.to_vec());
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let writer = with_writes.then(|| {
        let (client, urls, stop, token, membership) = (
            client.clone(),
            urls.clone(),
            stop.clone(),
            fixture.token.clone(),
            fixture.flipped_membership.clone(),
        );
        tokio::spawn(async move {
            let role = guildhall::graphql::ids::encode(
                guildhall::graphql::ids::NodeKind::Role,
                guildhall::domain::builtins::role_id("viewer"),
            )
            .0;
            let input = json!({ "i": { "membershipId": membership, "roleId": role } });
            let mut n = 0usize;
            // Ends after a revoke, so the next run starts from the same state.
            while !stop.load(Ordering::Relaxed) || !n.is_multiple_of(2) {
                let query = if n.is_multiple_of(2) { GRANT } else { REVOKE };
                let body = gql(&client, &urls[n % urls.len()], &token, query, input.clone()).await;
                if !body["errors"].is_null() || body["transport"].is_string() {
                    eprintln!("a role change failed: {body}");
                }
                n += 1;
            }
            n
        })
    });
    let started = Instant::now();
    let readers: Vec<_> = (0..CONNECTIONS)
        .map(|task| {
            let (client, urls, stop, errors, token) = (
                client.clone(),
                urls.clone(),
                stop.clone(),
                errors.clone(),
                fixture.token.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = task;
                while !stop.load(Ordering::Relaxed) {
                    let slug = format!("org-{:02}", n % 20);
                    let began = Instant::now();
                    let body = gql(&client, &urls[n % urls.len()], &token, PAGE, json!({ "slug": slug })).await;
                    latencies.push(began.elapsed());
                    if body["data"]["organization"]["members"]["totalCount"] != 50 {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.expect("reader"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let writes = match writer {
        Some(writer) => writer.await.expect("writer"),
        None => 0,
    };
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    Measured {
        setup: setup.to_owned(),
        workload: if with_writes { "page under writes" } else { "page" }.to_owned(),
        requests: latencies.len(),
        errors: errors.load(Ordering::Relaxed),
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        writes,
    }
}

#[tokio::main]
async fn main() {
    let Some(pgbouncer) = Pooler::binary() else {
        eprintln!("set GUILDHALL_TEST_PGBOUNCER to a PgBouncer binary (.ci/pgbouncer builds one)");
        std::process::exit(2);
    };
    let seconds: u64 = std::env::var("GUILDHALL_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.expect("cluster");
    cluster.create_database("guildhall");
    let pooler = Pooler::start(&pgbouncer, &cluster, "guildhall", 16);
    let direct = cluster.url("guildhall");
    let pooled = pooler.url("guildhall");

    let fixture = {
        let first = start(&direct, None, false).await;
        fill(&first, &direct).await
    };
    let mut results = Vec::new();
    for (setup, url, count, nothing_shared) in [
        ("1 process, direct", direct.as_str(), 1, false),
        ("1 process, PgBouncer", pooled.as_str(), 1, false),
        ("3 processes, PgBouncer", pooled.as_str(), 3, false),
        ("1 process, direct, cold", direct.as_str(), 1, true),
        ("3 processes, PgB., cold", pooled.as_str(), 3, true),
    ] {
        let mut servers = Vec::new();
        for _ in 0..count {
            servers.push(start(url, Some(&direct), nothing_shared).await);
        }
        let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
        // A short warm-up, then the measured runs.
        drive(setup, &urls, &fixture, 1, false).await;
        for writes in [false, true] {
            let measured = drive(setup, &urls, &fixture, seconds, writes).await;
            println!(
                "{:<24} {:<18} {:>8.0} req/s  p50 {:>6.1} ms  p99 {:>6.1} ms  errors {}  writes {}",
                measured.setup,
                measured.workload,
                measured.requests_per_second,
                measured.p50_ms,
                measured.p99_ms,
                measured.errors,
                measured.writes
            );
            results.push(measured);
        }
    }
    let report = json!({
        "connections": CONNECTIONS,
        "seconds_per_workload": seconds,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "pgbouncer": "1.24.1, pool_mode = transaction, default_pool_size = 16, max_prepared_statements = 1000",
        "server_pool": "8 connections per process",
        "results": results,
    });
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benchmarks/results-pooled.json");
    std::fs::write(path, serde_json::to_string_pretty(&report).expect("json")).expect("write results");
    println!("wrote {path}");
}
