//! Three `guildhall serve` processes behind PgBouncer in transaction pooling mode, on a
//! PostgreSQL cluster of the test's own, with change announcements heard on direct connections
//! (`--listen-database-url`). Round-robin load gets correct answers and every change committed
//! through one process is enforced by the others on their next request; PostgreSQL restarted
//! in the middle of a load of writes and reads: every process recovers on its own, no
//! acknowledged write is lost and no request outlives its deadline.
//!
//! Runs when `GUILDHALL_TEST_PGBOUNCER` names a PgBouncer binary (1.21 or later; `.ci/run`
//! builds one with `.ci/pgbouncer`); without it, the test says so and passes.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Cluster, Pooler};
use crate::helpers::{builtin_role, error_code, spawn_with, test_args};
use crate::processes::Process;

const GRANT: &str = "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }";
const REVOKE: &str = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }";
const MAY_READ: &str = "query($o: ID!) { authorize(organizationId: $o, key: \"members.read\") { allowed } }";
const CREATE_WORKSPACE: &str =
    "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id slug } } }";
const COUNTS: &str =
    "{ organization(slug: \"acme\") { members(first: 50) { totalCount edges { node { user { email } } } } } }";
const WORKSPACES: &str =
    "query($after: String) { organization(slug: \"acme\") { workspaces(first: 100, after: $after) {
  edges { node { slug } } pageInfo { hasNextPage endCursor } } } }";
/// Room for every workspace the load creates.
const PLAN_LIMITS: &str =
    r#"{"FREE": {"admins": 5, "members": 50, "customRoles": 10, "customKeychains": 10, "workspaces": 100000}}"#;
/// The deadline each server is given (`--max-execution-ms`), and the slack allowed on top of
/// it for the answer to travel.
const DEADLINE: Duration = Duration::from_secs(4);
const SLACK: Duration = Duration::from_secs(3);

fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

async fn scrape(server: &Process) -> String {
    match server.client.get(&server.metrics_url).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until every server's change listener is connected.
async fn until_listening(servers: &[Process]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in servers {
        while gauge(&scrape(server).await, "guildhall_change_listener_connected") != Some(1.0) {
            assert!(Instant::now() < deadline, "a change listener never (re)connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// From the first refusal to the last.
fn refused_window(refused_at: &[Instant]) -> Duration {
    match (refused_at.iter().min(), refused_at.iter().max()) {
        (Some(first), Some(last)) => last.duration_since(*first),
        _ => Duration::ZERO,
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `viewerAccessChanged` subscription over `graphql-transport-ws`, acknowledged.
async fn subscribe_access(server: &Process, bearer: &str, organization: &str) -> Socket {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("{}/graphql", server.url.replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {bearer}") } });
    socket.send(Message::text(init.to_string())).await.expect("send");
    assert_eq!(next_message(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({ "id": "a", "type": "subscribe", "payload": {
        "query": "subscription($o: ID!) { viewerAccessChanged(organizationId: $o) { keys } }",
        "variables": { "o": organization } } });
    socket.send(Message::text(subscribe.to_string())).await.expect("send");
    socket
}

async fn next_message(socket: &mut Socket) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(4), socket.next())
            .await
            .expect("a message within 4 s (the access re-check is every 5 s, the poll ten minutes)")
            .expect("open")
            .expect("message");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] == "ping" {
                socket
                    .send(Message::text(json!({ "type": "pong" }).to_string()))
                    .await
                    .expect("pong");
                continue;
            }
            return value;
        }
    }
}

/// The next `viewerAccessChanged` payload.
async fn next_payload(socket: &mut Socket) -> Value {
    let message = next_message(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["viewerAccessChanged"].clone()
}

/// A request with the deadline checked: the answer (or `None` if the connection failed) and
/// how long it took.
async fn timed(server: &Process, bearer: &str, query: &str, variables: Value) -> (Option<Value>, Duration) {
    let started = Instant::now();
    let response = server
        .client
        .post(format!("{}/graphql", server.url))
        .bearer_auth(bearer)
        .timeout(DEADLINE + SLACK + Duration::from_secs(5))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await;
    let body = match response {
        Ok(response) => response.json::<Value>().await.ok(),
        Err(_) => None,
    };
    (body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_behind_pgbouncer_stay_fresh_and_outlive_a_postgresql_restart() {
    let Some(pgbouncer) = Pooler::binary() else {
        eprintln!("GUILDHALL_TEST_PGBOUNCER is not set: skipping the PgBouncer test (.ci/run runs it)");
        return;
    };
    let cluster = Arc::new(tokio::task::spawn_blocking(Cluster::start).await.expect("cluster"));
    cluster.create_database("guildhall");
    // Three processes of four connections each share four connections to PostgreSQL.
    let pooler = Pooler::start(&pgbouncer, &cluster, "guildhall", 4);
    let pooled = pooler.url("guildhall");
    let direct = cluster.url("guildhall");

    // Migrations and the first accounts through the pooler, from an in-process server.
    let mut args = test_args(&pooled);
    args.plan_limits = Some(PLAN_LIMITS.to_owned());
    let setup = spawn_with(args).await;
    let owner = setup.sign_up("owner@example.com", "Owner").await;
    let member = setup.sign_up("member@example.com", "Member").await;
    let org = setup.create_organization(&owner, "acme").await;
    let membership = setup.add_member(&org, &member).await;
    setup.stop().await;

    let deadline_ms = DEADLINE.as_millis().to_string();
    // Live subscriptions hear other processes' commits only through the listener: the poll
    // would take ten minutes.
    let flags = [
        "--change-poll-ms",
        "600000",
        "--plan-limits",
        PLAN_LIMITS,
        "--listen-database-url",
        direct.as_str(),
        "--max-execution-ms",
        deadline_ms.as_str(),
    ];
    let servers = Arc::new([
        Process::start_with(&pooled, &flags).await,
        Process::start_with(&pooled, &flags).await,
        Process::start_with(&pooled, &flags).await,
    ]);
    until_listening(&servers[..]).await;

    // Every grant and revoke, made through one process, is decided on by the other two at once.
    let input = json!({ "i": { "membershipId": membership, "roleId": builtin_role("viewer") } });
    let mut stale = 0;
    let rounds = 60;
    for round in 0..rounds {
        let writer = &servers[round % 3];
        let granted = round % 2 == 0;
        let body = writer
            .gql(
                Some(&owner.access_token),
                if granted { GRANT } else { REVOKE },
                input.clone(),
            )
            .await;
        assert!(body["errors"].is_null(), "round {round}: {body}");
        for reader in servers.iter().filter(|s| s.url != writer.url) {
            let body = reader
                .gql(Some(&member.access_token), MAY_READ, json!({ "o": org }))
                .await;
            if body["data"]["authorize"]["allowed"].as_bool() != Some(granted) {
                stale += 1;
            }
        }
    }
    assert_eq!(stale, 0, "{stale} stale decisions in {rounds} rounds");

    // Round-robin reads from eight clients: every answer is complete and right.
    let answers = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(2);
    let readers: Vec<_> = (0..8)
        .map(|client| {
            let (servers, answers, token) = (servers.clone(), answers.clone(), owner.access_token.clone());
            tokio::spawn(async move {
                let mut turn = client;
                while Instant::now() < until {
                    let body = servers[turn % 3].gql(Some(&token), COUNTS, json!({})).await;
                    assert!(body["errors"].is_null(), "{body}");
                    assert_eq!(body["data"]["organization"]["members"]["totalCount"], 2, "{body}");
                    answers.fetch_add(1, Ordering::Relaxed);
                    turn += 1;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.expect("reader");
    }
    assert!(answers.load(Ordering::Relaxed) > 30, "{answers:?}");

    // Writes and reads over all three while PostgreSQL restarts.
    let started_before: Value = servers[0]
        .gql(Some(&owner.access_token), MAY_READ, json!({ "o": org }))
        .await;
    assert_eq!(started_before["data"]["authorize"]["allowed"], true);
    let postmaster_start = || {
        let output = std::process::Command::new(crate::cluster::postgres_bin("psql"))
            .args(["-X", "-A", "-t", "-d", &cluster.url("postgres"), "-c"])
            .arg("SELECT pg_postmaster_start_time()")
            .output()
            .expect("psql");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let first_start = postmaster_start();
    let stop_at = Arc::new(std::sync::Mutex::new(Instant::now() + Duration::from_secs(60)));
    let load: Vec<_> = (0..6)
        .map(|client| {
            let (servers, token, org, stop_at) = (
                servers.clone(),
                owner.access_token.clone(),
                org.clone(),
                stop_at.clone(),
            );
            tokio::spawn(async move {
                let (mut acknowledged, mut refused, mut slowest) = (Vec::new(), Vec::new(), Duration::ZERO);
                let mut refused_at = Vec::new();
                let mut n = 0usize;
                while Instant::now() < *stop_at.lock().expect("lock") {
                    let server = &servers[(client + n) % 3];
                    let (body, took) = if n.is_multiple_of(2) {
                        let slug = format!("w-{client}-{n}");
                        let variables = json!({ "i": { "organizationId": org, "name": slug, "slug": slug } });
                        let (body, took) = timed(server, &token, CREATE_WORKSPACE, variables).await;
                        if let Some(body) = &body
                            && body["data"]["createWorkspace"]["workspace"]["slug"] == slug.as_str()
                        {
                            acknowledged.push(slug);
                        }
                        (body, took)
                    } else {
                        timed(server, &token, COUNTS, json!({})).await
                    };
                    slowest = slowest.max(took);
                    match body {
                        Some(body) if body["errors"].is_null() => {}
                        Some(body) => refused.push(body),
                        None => refused.push(json!({ "transport": "no answer" })),
                    }
                    if refused.len() > refused_at.len() {
                        refused_at.push(Instant::now());
                    }
                    n += 1;
                }
                (acknowledged, refused, slowest, n, refused_at)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let restarting = Instant::now();
    let restarted = cluster.clone();
    // pg_ctl returns once PostgreSQL accepts connections again.
    tokio::task::spawn_blocking(move || restarted.restart())
        .await
        .expect("restart");
    let restart = restarting.elapsed();
    *stop_at.lock().expect("lock") = Instant::now() + Duration::from_secs(4);
    let (mut acknowledged, mut refused, mut slowest, mut requests) = (Vec::new(), Vec::new(), Duration::ZERO, 0);
    let mut refused_at = Vec::new();
    for task in load {
        let (a, r, s, n, at) = task.await.expect("load");
        acknowledged.extend(a);
        refused.extend(r);
        refused_at.extend(at);
        slowest = slowest.max(s);
        requests += n;
    }
    assert_ne!(postmaster_start(), first_start, "PostgreSQL did not restart");
    let window = match (refused_at.iter().min(), refused_at.iter().max()) {
        (Some(first), Some(last)) => format!(
            "from {:?} after the restart began, for {:?}",
            first.saturating_duration_since(restarting),
            last.duration_since(*first)
        ),
        _ => "never".to_owned(),
    };
    println!(
        "PostgreSQL restart took {restart:?}: {requests} requests, {} workspaces acknowledged, {} refused ({window}), slowest answer {slowest:?}",
        acknowledged.len(),
        refused.len()
    );
    assert!(slowest < DEADLINE + SLACK, "an answer took {slowest:?}");
    for body in &refused {
        // Refusals are coded and say nothing of the database's internals.
        let code = error_code(body);
        assert_eq!(code, "UNAVAILABLE", "{body}");
        let text = body.to_string().to_lowercase();
        for leak in ["sql", "pgbouncer", "server conn", "postgres", "connection"] {
            assert!(!text.contains(leak), "{leak} leaked: {body}");
        }
    }
    assert!(!acknowledged.is_empty());

    // Every process answers again on its own, hears announcements again, and lost nothing.
    let recovered_by = Instant::now() + Duration::from_secs(30);
    for server in servers.iter() {
        loop {
            let (body, _) = timed(server, &owner.access_token, COUNTS, json!({})).await;
            if body.as_ref().is_some_and(|b| b["errors"].is_null()) {
                break;
            }
            assert!(Instant::now() < recovered_by, "a server never recovered: {body:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    until_listening(&servers[..]).await;
    assert!(
        refused_window(&refused_at) < Duration::from_secs(5),
        "refused for too long"
    );
    // Each process's listener hears, after the restart, a change committed through another.
    for (i, server) in servers.iter().enumerate() {
        let mut socket = subscribe_access(server, &member.access_token, &org).await;
        let before = next_payload(&mut socket).await;
        let writer = &servers[(i + 1) % 3];
        let granted = before["keys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "members.read"));
        let body = writer
            .gql(
                Some(&owner.access_token),
                if granted { REVOKE } else { GRANT },
                input.clone(),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let after = next_payload(&mut socket).await;
        assert_ne!(after["keys"], before["keys"], "process {i}: {after}");
    }
    let mut present = std::collections::HashSet::new();
    let mut after = Value::Null;
    loop {
        let body = servers[1]
            .gql(Some(&owner.access_token), WORKSPACES, json!({ "after": after }))
            .await;
        let page = &body["data"]["organization"]["workspaces"];
        for edge in page["edges"].as_array().expect("edges") {
            present.insert(edge["node"]["slug"].as_str().expect("slug").to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    acknowledged.sort();
    let lost: Vec<_> = acknowledged.iter().filter(|slug| !present.contains(*slug)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // And freshness holds after the restart as before it.
    let held = servers[0]
        .gql(Some(&member.access_token), MAY_READ, json!({ "o": org }))
        .await["data"]["authorize"]["allowed"]
        == true;
    for round in 0..6 {
        let granted = (round % 2 == 0) != held;
        let body = servers[round % 3]
            .gql(
                Some(&owner.access_token),
                if granted { GRANT } else { REVOKE },
                input.clone(),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let reader = &servers[(round + 1) % 3];
        let body = reader
            .gql(Some(&member.access_token), MAY_READ, json!({ "o": org }))
            .await;
        assert_eq!(body["data"]["authorize"]["allowed"].as_bool(), Some(granted), "{body}");
    }
    drop(servers);
    drop(pooler);
}
