//! HTTP load driver: starts the release `guildhall serve` as its own process, fills it with
//! data, and drives each workload with 32 concurrent connections for a fixed time, next to the
//! ceiling `{ __typename }` measured in the same run. Prints a table and writes
//! `benchmarks/results-http.json`.
//!
//! `cargo bench --bench http` runs SQLite and, when `GUILDHALL_BENCH_POSTGRES_URL` (an admin
//! URL such as `postgres://postgres@127.0.0.1:5432/postgres`) is set, PostgreSQL as well.
//! `GUILDHALL_BENCH_SECONDS` sets the time per workload (default 5).
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

const CONNECTIONS: usize = 32;
const SECRET: &str = "bench-secret-that-is-long-enough-for-hs256-0123456789";
const PASSWORD: &str = "correct horse battery staple";

const PAGE: &str = "query($slug: String!) {
  viewer { organizations(first: 20) { totalCount edges { node { id slug name } } } }
  organization(slug: $slug) { viewerKeys members(first: 50) { totalCount edges { node { id joinedAt
    user { id name email } roleBindings { grantedAt workspace { id } role { id name keychains { id name } } } } } } } }";
const DASHBOARD: &str = "{ viewer { organizations(first: 20) { edges { node { slug viewerMembership { id }
  members(first: 50) { totalCount edges { node { user { name email } roleBindings { role { name keychains { name } } } } } } } } } } }";
const MEMBERS: &str = "query($after: String) { organization(slug: \"big\") { members(first: 50, after: $after) {
  edges { cursor node { id user { name email } roleBindings { role { name } } } } pageInfo { hasNextPage } } } }";
/// The costliest query the default limit accepts (see `graphql::cost`): 71 aliases of a
/// 100-member page with each member's keys computed: 1 + 71 × 701 = 49,772 of 50,000.
fn worst_accepted() -> &'static str {
    let aliases: String = (0..71)
        .map(|i| format!("m{i}: members(first: 100) {{ edges {{ node {{ effectiveKeys }} }} }} "))
        .collect();
    Box::leak(format!("{{ organization(slug: \"big\") {{ {aliases} }} }}").into_boxed_str())
}
const GRANT: &str = "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }";
const REVOKE: &str = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }";
/// Everyone holding a key in the organization of 10,000 members, a page of 50 with the grants.
const PREVIEW: &str = "query($o: ID!, $c: RoleChangeInput!) { previewRoleChange(organizationId: $o, change: $c) { gaining losing changes { gained } } }";
const WHO_CAN: &str = "query($o: ID!, $k: String!) { whoCan(organizationId: $o, key: $k, first: 50) { totalCount
  edges { node { membership { id user { name } } grants { key implication role { name } keychain { name } } } }
  pageInfo { hasNextPage } } }";
const AUTHORIZE: &str = "query($o: ID!) { authorize(organizationId: $o, key: \"members.invite\") { allowed reason } }";

struct Server {
    child: Child,
    url: String,
    database_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Peak resident memory of the server process, in MiB.
    /// Starts measuring the peak anew (the kernel resets VmHWM to the current resident set).
    fn reset_peak_memory(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    /// CPU time the server process has used so far (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime and stime are the
        // 12th and 13th of them, in clock ticks.
        let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(11) + ticks(12)) / per_second
    }

    fn peak_memory_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

async fn start(database_url: String) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &database_url])
        .args(["--metrics-bind", "off"])
        .args(["--jwt-secret", SECRET])
        .args(["--login-max-failures-per-address", "100000", "--sign-ups-per-address", "10000000"])
        .args(["--log-format", "json"])
        .env("GUILDHALL_LOG", "warn")
        .env("GUILDHALL_PLAN_LIMITS", r#"{"FREE": {"admins": 1000, "members": 1000000, "customRoles": 100, "customKeychains": 100, "workspaces": 100}}"#)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start guildhall");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
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
    Server {
        child,
        url,
        database_url,
    }
}

async fn gql(client: &reqwest::Client, url: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = client
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request").json().await.expect("json")
}

fn raw(id: &str) -> Uuid {
    guildhall::graphql::ids::decode_any(&async_graphql::ID(id.to_owned()))
        .expect("global id")
        .1
}

struct Fixture {
    token: String,
    first_org: String,
    /// The organization of 10,000 members.
    big: String,
    big_after_page_199: String,
    /// A member of the first organization whose role the write stream flips.
    flipped_membership: String,
}

/// 20 organizations of 50 members (the benchmark's owner in each), and one of 10,000.
async fn fill(server: &Server) -> Fixture {
    let client = reqwest::Client::new();
    let url = &server.url;
    gql(
        &client,
        url,
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
        json!({ "i": { "email": "owner@example.com", "password": PASSWORD, "name": "Owner" } }),
    )
    .await;
    let store = guildhall::store::Store::connect(&server.database_url, 4)
        .await
        .expect("store");
    // The owner's address counts as proved (the mailed link is not what is measured).
    sea_orm::ConnectionTrait::execute_unprepared(&store.conn, "UPDATE users SET email_verified_at = created_at")
        .await
        .expect("verify the owner");
    let signed = gql(
        &client,
        url,
        None,
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({ "i": { "email": "owner@example.com", "password": PASSWORD } }),
    )
    .await;
    let token = signed["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let viewer = guildhall::domain::builtins::role_id("viewer");
    let mut first_org = String::new();
    for o in 0..20 {
        let body = gql(
            &client,
            url,
            Some(&token),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": format!("Org {o}"), "slug": format!("org-{o:02}") } }),
        )
        .await;
        let id = body["data"]["createOrganization"]["organization"]["id"]
            .as_str()
            .expect("org")
            .to_owned();
        guildhall::store::fixtures::bulk_members(&store, raw(&id), 49, Some(viewer))
            .await
            .expect("members");
        if o == 0 {
            first_org = id;
        }
    }
    let body = gql(
        &client,
        url,
        Some(&token),
        "mutation { createOrganization(input: { name: \"Big\", slug: \"big\" }) { organization { id } } }",
        json!({}),
    )
    .await;
    let big = body["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .expect("org")
        .to_owned();
    let ids = guildhall::store::fixtures::bulk_members(&store, raw(&big), 10_000, Some(viewer))
        .await
        .expect("members");
    let flipped = guildhall::store::fixtures::bulk_members(&store, raw(&first_org), 1, None)
        .await
        .expect("member");
    // Statistics for the planner, as a database that has been running a while has them (the
    // rows above arrived in bulk a moment ago; autovacuum would analyze them later).
    sea_orm::ConnectionTrait::execute_unprepared(&store.conn, "ANALYZE")
        .await
        .expect("analyze");
    store.close().await;
    // Page 200 starts after 199 pages of 50: the owner's membership plus 9,949 others.
    let big_after_page_199 = guildhall::domain::page::encode_cursor(ids[199 * 50 - 2]);
    Fixture {
        token,
        first_org,
        big,
        big_after_page_199,
        flipped_membership: guildhall::graphql::ids::encode(guildhall::graphql::ids::NodeKind::Membership, flipped[0])
            .0,
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    workload: String,
    requests: usize,
    errors: usize,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Peak resident memory of the server during this workload.
    peak_server_mib: f64,
    /// CPU time the server spent per request (user + system, all threads).
    server_cpu_ms_per_request: f64,
}

type Step = Arc<dyn Fn(reqwest::Client, usize) -> futures_util::future::BoxFuture<'static, bool> + Send + Sync>;

/// Runs `step` from 32 concurrent tasks for the configured time. `GUILDHALL_BENCH_ONLY` (names
/// separated by commas, matched as prefixes) skips the other workloads, for profiling one.
async fn drive(server: &Server, name: &str, seconds: u64, step: Step) -> Measured {
    if let Ok(only) = std::env::var("GUILDHALL_BENCH_ONLY")
        && !only.split(',').any(|w| !w.is_empty() && name.starts_with(w.trim()))
    {
        return Measured {
            workload: name.to_owned(),
            requests: 0,
            errors: 0,
            requests_per_second: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            peak_server_mib: 0.0,
            server_cpu_ms_per_request: 0.0,
        };
    }
    // `GUILDHALL_BENCH_CONNECTIONS` overrides the 32 connections, for profiling latency alone.
    let connections = std::env::var("GUILDHALL_BENCH_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CONNECTIONS);
    server.reset_peak_memory();
    let cpu_before = server.cpu_seconds();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let client = client.clone();
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut n = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if !step(client.clone(), worker * 1_000_000 + n).await {
                    errors += 1;
                }
                latencies.push(t.elapsed());
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    let measured = Measured {
        workload: name.to_owned(),
        requests: latencies.len(),
        errors,
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        peak_server_mib: server.peak_memory_mib(),
        server_cpu_ms_per_request: (server.cpu_seconds() - cpu_before) * 1000.0 / latencies.len().max(1) as f64,
    };
    println!(
        "  {:<22} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   peak {:>6.1} MiB   cpu {:>7.3} ms/req   ({} requests, {} errors)",
        measured.workload,
        measured.requests_per_second,
        measured.p50_ms,
        measured.p99_ms,
        measured.peak_server_mib,
        measured.server_cpu_ms_per_request,
        measured.requests,
        measured.errors
    );
    measured
}

fn query_step(url: &str, token: Option<&str>, query: &'static str, variables: Value) -> Step {
    let url = format!("{url}/graphql");
    let token = token.map(str::to_owned);
    Arc::new(move |client: reqwest::Client, _| {
        let mut request = client
            .post(url.clone())
            .json(&json!({ "query": query, "variables": variables.clone() }));
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        Box::pin(async move {
            match request.send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|body| body["errors"].is_null() && !body["data"].is_null()),
                Err(_) => false,
            }
        })
    })
}

/// invite → acceptInvitationWithSignUp (which hashes a password) → grantRole, as one step of
/// three requests.
fn write_step(url: &str, token: &str, organization: &str) -> Step {
    let url = format!("{url}/graphql");
    let token = token.to_owned();
    let organization = organization.to_owned();
    Arc::new(move |client: reqwest::Client, n| {
        let (url, token, organization) = (url.clone(), token.clone(), organization.clone());
        Box::pin(async move {
            let post = |token: Option<String>, query: &'static str, variables: Value| {
                let mut request = client
                    .post(url.clone())
                    .json(&json!({ "query": query, "variables": variables }));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                async move { request.send().await.ok()?.json::<Value>().await.ok() }
            };
            let email = format!("new-{n}-{}@example.com", Uuid::new_v4().simple());
            let Some(invited) = post(
                Some(token.clone()),
                "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { acceptUrl } }",
                json!({ "i": { "organizationId": organization, "email": email } }),
            )
            .await
            else {
                return false;
            };
            let Some(link) = invited["data"]["inviteMember"]["acceptUrl"].as_str() else {
                return false;
            };
            let invitation_token = link.split_once("token=").map(|(_, t)| t.to_owned()).unwrap_or_default();
            let Some(accepted) = post(
                None,
                "mutation($i: AcceptInvitationWithSignUpInput!) { acceptInvitationWithSignUp(input: $i) { membership { id } } }",
                json!({ "i": { "token": invitation_token, "name": "New", "password": PASSWORD } }),
            )
            .await
            else {
                return false;
            };
            let Some(membership) = accepted["data"]["acceptInvitationWithSignUp"]["membership"]["id"].as_str() else {
                return false;
            };
            let granted = post(
                Some(token),
                "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }",
                json!({ "i": { "membershipId": membership, "roleId": guildhall::graphql::ids::encode(guildhall::graphql::ids::NodeKind::Role, guildhall::domain::builtins::role_id("viewer")).0 } }),
            )
            .await;
            granted.is_some_and(|g| g["errors"].is_null())
        })
    })
}

/// The page workload while one writer grants and revokes a role in the page's organization,
/// once every `pace` (or back to back).
async fn page_under_writes(
    server: &Server,
    fixture: &Fixture,
    seconds: u64,
    pace: Option<Duration>,
    label: &str,
) -> Measured {
    let url = server.url.clone();
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let skipped = std::env::var("GUILDHALL_BENCH_ONLY")
        .is_ok_and(|only| !only.split(',').any(|w| !w.is_empty() && label.starts_with(w.trim())));
    let writer = (!skipped).then(|| {
        let (url, token, membership, writes) = (
            url.clone(),
            fixture.token.clone(),
            fixture.flipped_membership.clone(),
            writes.clone(),
        );
        let stop = Instant::now() + Duration::from_secs(seconds);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let role = guildhall::graphql::ids::encode(
                guildhall::graphql::ids::NodeKind::Role,
                guildhall::domain::builtins::role_id("member"),
            )
            .0;
            let mut grant = true;
            let mut next = Instant::now();
            while Instant::now() < stop {
                if let Some(pace) = pace {
                    tokio::time::sleep_until(next.into()).await;
                    next += pace;
                }
                let body = gql(
                    &client,
                    &url,
                    Some(&token),
                    if grant { GRANT } else { REVOKE },
                    json!({ "i": { "membershipId": membership, "roleId": role } }),
                )
                .await;
                if body["errors"].is_null() {
                    writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                grant = !grant;
            }
        })
    });
    let token = Some(fixture.token.as_str());
    let mut measured = drive(
        server,
        label,
        seconds,
        query_step(&url, token, PAGE, json!({ "slug": "org-00" })),
    )
    .await;
    if let Some(writer) = writer {
        writer.abort();
    }
    let writes = writes.load(std::sync::atomic::Ordering::Relaxed);
    if !skipped {
        println!(
            "  (writes committed meanwhile: {writes}, {:.0}/s)",
            writes as f64 / seconds as f64
        );
    }
    measured.workload = format!("{label} ({:.0} writes/s)", writes as f64 / seconds as f64);
    measured
}

async fn run_backend(label: &str, database_url: String, seconds: u64) -> Value {
    println!("\n{label}");
    let server = start(database_url).await;
    let fixture = fill(&server).await;
    let url = server.url.clone();
    let token = Some(fixture.token.as_str());
    let mut results = Vec::new();
    results.push(
        drive(
            &server,
            "ceiling {__typename}",
            seconds,
            query_step(&url, None, "{ __typename }", json!({})),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "authorize",
            seconds,
            query_step(&url, token, AUTHORIZE, json!({ "o": fixture.first_org })),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "page",
            seconds,
            query_step(&url, token, PAGE, json!({ "slug": "org-00" })),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "dashboard",
            seconds,
            query_step(&url, token, DASHBOARD, json!({})),
        )
        .await,
    );
    // The same page while one writer grants and revokes a role in the same organization: every
    // write makes the next request of every reader read afresh. Paced at one write every 100 ms
    // and every 10 ms, then as fast as one writer can.
    for (pace, label) in [
        (Some(Duration::from_millis(100)), "page, a write every 100 ms"),
        (Some(Duration::from_millis(10)), "page, a write every 10 ms"),
        (None, "page under writes"),
    ] {
        results.push(page_under_writes(&server, &fixture, seconds, pace, label).await);
    }
    results.push(
        drive(
            &server,
            "worst accepted query",
            seconds,
            query_step(&url, token, worst_accepted(), json!({})),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "members page 1",
            seconds,
            query_step(&url, token, MEMBERS, json!({})),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "members page 200",
            seconds,
            query_step(&url, token, MEMBERS, json!({ "after": fixture.big_after_page_199 })),
        )
        .await,
    );
    for (key, label) in [
        ("members.read", "whoCan, all 10,001 hold it"),
        ("organization.delete", "whoCan, 1 of 10,001 holds it"),
    ] {
        results.push(
            drive(
                &server,
                label,
                seconds,
                query_step(&url, token, WHO_CAN, json!({ "o": fixture.big, "k": key })),
            )
            .await,
        );
    }
    // A preview at 10,001 members: granting `user_admin` to one of them, run through grantRole,
    // rolled back, with everyone's access read twice inside the transaction.
    let page = gql(
        &reqwest::Client::new(),
        &url,
        token,
        "query($o: ID!) { node(id: $o) { ... on Organization { members(first: 2) { nodes { id } } } } }",
        json!({ "o": fixture.big }),
    )
    .await;
    let member = page["data"]["node"]["members"]["nodes"][1]["id"].clone();
    let user_admin = guildhall::graphql::ids::encode(
        guildhall::graphql::ids::NodeKind::Role,
        guildhall::domain::builtins::role_id("user_admin"),
    )
    .0;
    let change = json!({ "o": fixture.big, "c": { "grantRole": { "membershipId": member, "roleId": user_admin } } });
    let once = gql(&reqwest::Client::new(), &url, token, PREVIEW, change.clone()).await;
    if !once["errors"].is_null() {
        println!("  previewRoleChange answered {}", once["errors"]);
    }
    results.push(
        drive(
            &server,
            "previewRoleChange, 10,001 members",
            seconds,
            query_step(&url, token, PREVIEW, change),
        )
        .await,
    );
    results.push(
        drive(
            &server,
            "write mix (3 requests)",
            seconds,
            write_step(&url, &fixture.token, &fixture.first_org),
        )
        .await,
    );
    let owners = gql(
        &reqwest::Client::new(),
        &url,
        token,
        "{ organization(slug: \"org-00\") { roles { name holderCount } members(first: 1) { totalCount } } }",
        json!({}),
    )
    .await;
    let peak = results.iter().map(|r| r.peak_server_mib).fold(0.0, f64::max);
    println!("  peak server memory     {peak:.1} MiB (highest of the workloads)");
    println!("  after the write mix: {}", owners["data"]["organization"]["roles"][0]);
    let ceiling = results[0].requests_per_second.max(1.0);
    json!({
        "backend": label,
        "connections": CONNECTIONS,
        "secondsPerWorkload": seconds,
        "peakServerMemoryMiB": peak,
        "workloads": results.iter().map(|r| {
            let mut v = serde_json::to_value(r).expect("json");
            v["shareOfCeiling"] = json!(r.requests_per_second / ceiling);
            v
        }).collect::<Vec<_>>(),
        "afterWriteMix": owners["data"],
    })
}

fn main() {
    let seconds: u64 = std::env::var("GUILDHALL_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut all = Vec::new();
    runtime.block_on(async {
        let dir = std::env::temp_dir().join("guildhall-bench");
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(format!("{}.db", Uuid::new_v4().simple()));
        all.push(run_backend("SQLite", format!("sqlite://{}?mode=rwc", file.display()), seconds).await);
        if let Ok(admin) = std::env::var("GUILDHALL_BENCH_POSTGRES_URL") {
            let name = format!("gh_bench_{}", Uuid::new_v4().simple());
            let conn = sea_orm::Database::connect(admin.as_str()).await.expect("postgres");
            sea_orm::ConnectionTrait::execute_unprepared(&conn, &format!("CREATE DATABASE {name}"))
                .await
                .expect("db");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            all.push(run_backend("PostgreSQL", format!("{base}/{name}"), seconds).await);
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &conn,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    });
    std::fs::create_dir_all("benchmarks").expect("dir");
    // `GUILDHALL_BENCH_RESULTS` names another results file (for runs with other server settings).
    let results =
        std::env::var("GUILDHALL_BENCH_RESULTS").unwrap_or_else(|_| "benchmarks/results-http.json".to_owned());
    std::fs::write(
        results,
        serde_json::to_string_pretty(&json!({ "machine": machine(), "runs": all })).expect("json"),
    )
    .expect("write results");
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_owned())
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) })
}
