//! Several `guildhall serve` processes on one database: a change committed through any of them
//! is enforced by every other on its very next request. And a server whose database connection
//! stops forwarding (without closing) never answers from what it kept: it fails within its
//! deadline instead.
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{SECRET, TestApp, builtin_role, error_code, fresh_database_url, spawn_with, test_args};

/// A server process of the release under test, killed when dropped.
pub struct Process {
    child: Child,
    pub url: String,
    pub metrics_url: String,
    pub client: reqwest::Client,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub async fn start(database_url: &str) -> Process {
        Process::start_with(database_url, &[]).await
    }

    /// Starts a server on `database_url` with `extra` flags.
    pub async fn start_with(database_url: &str, extra: &[&str]) -> Process {
        let free_port = || {
            StdListener::bind("127.0.0.1:0")
                .expect("a free port")
                .local_addr()
                .expect("address")
                .port()
        };
        let (port, metrics_port) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--metrics-bind",
                &format!("127.0.0.1:{metrics_port}"),
                "--database-url",
                database_url,
            ])
            .args(["--jwt-secret", SECRET, "--database-max-connections", "4"])
            .args([
                "--login-max-failures-per-address",
                "100000",
                "--sign-ups-per-address",
                "100000",
            ])
            .args(extra)
            .env("GUILDHALL_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a server process");
        let mut process = Process {
            child,
            url: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = process.client.get(format!("{}/readyz", process.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return process;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the server process exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "the server process never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn gql(&self, bearer: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send().await.expect("request").json().await.expect("JSON")
    }
}

const GRANT: &str = "mutation($i: GrantRoleInput!) { grantRole(input: $i) { membership { id } } }";
const REVOKE: &str = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { membership { id } } }";
const MAY_READ: &str = "query($o: ID!) { authorize(organizationId: $o, key: \"members.read\") { allowed } }";

async fn allowed(server: &Process, bearer: &str, organization: &str) -> Option<bool> {
    let body = server.gql(Some(bearer), MAY_READ, json!({ "o": organization })).await;
    body["data"]["authorize"]["allowed"].as_bool()
}

#[tokio::test]
async fn serve_answers_metrics_on_its_own_listener_and_not_on_the_public_one() {
    let database_url = fresh_database_url().await;
    let server = Process::start(&database_url).await;
    let body = server.gql(None, "query Probe { __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query");
    let scrape = server.client.get(&server.metrics_url).send().await.expect("scrape");
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
        "{:?}",
        scrape.headers()
    );
    let text = scrape.text().await.expect("text");
    assert!(
        text.lines()
            .any(|l| l == "guildhall_graphql_operations_total{operation=\"Probe\",kind=\"query\",outcome=\"ok\"} 1"),
        "{text}"
    );
    let public = server
        .client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(public.status(), 404);
}

#[tokio::test]
async fn three_processes_never_decide_on_a_stale_grant() {
    let database_url = fresh_database_url().await;
    // Migrations and the first sign-ups through an in-process server, then three processes.
    let setup = spawn_with(test_args(&database_url)).await;
    let owner = setup.sign_up("owner@example.com", "Owner").await;
    let member = setup.sign_up("member@example.com", "Member").await;
    let org = setup.create_organization(&owner, "acme").await;
    let membership = setup.add_member(&org, &member).await;
    setup.stop().await;
    let servers = [
        Process::start(&database_url).await,
        Process::start(&database_url).await,
        Process::start(&database_url).await,
    ];
    let rounds: usize = std::env::var("GUILDHALL_STALE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let input = json!({ "i": { "membershipId": membership, "roleId": builtin_role("viewer") } });
    let mut stale = 0;
    let mut decisions = 0;
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
            decisions += 1;
            if allowed(reader, &member.access_token, &org).await != Some(granted) {
                stale += 1;
            }
        }
    }

    // A revoked API token and sessions ended everywhere, each used on another process at once.
    let mut token_rounds = 0;
    for round in 0..100 {
        let (minting, using) = (&servers[round % 3], &servers[(round + 1) % 3]);
        let created = minting
            .gql(
                Some(&owner.access_token),
                "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token apiToken { id } } }",
                json!({ "i": { "name": format!("t{round}"), "organizationId": org } }),
            )
            .await;
        let secret = created["data"]["createApiToken"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let id = created["data"]["createApiToken"]["apiToken"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        assert_eq!(allowed(using, &secret, &org).await, Some(true));
        let revoked = minting
            .gql(
                Some(&owner.access_token),
                "mutation($i: RevokeApiTokenInput!) { revokeApiToken(input: $i) { apiToken { revokedAt } } }",
                json!({ "i": { "apiTokenId": id } }),
            )
            .await;
        assert!(revoked["errors"].is_null(), "{revoked}");
        token_rounds += 1;
        let body = using.gql(Some(&secret), MAY_READ, json!({ "o": org })).await;
        if error_code(&body) != "UNAUTHENTICATED" {
            stale += 1;
        }
    }
    let mut session_rounds = 0;
    for round in 0..20 {
        let (signing, using) = (&servers[round % 3], &servers[(round + 2) % 3]);
        let body = signing
            .gql(
                None,
                "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
                json!({ "i": { "email": "member@example.com", "password": crate::helpers::PASSWORD } }),
            )
            .await;
        let access = body["data"]["logIn"]["accessToken"]
            .as_str()
            .expect("access")
            .to_owned();
        assert!(allowed(using, &access, &org).await.is_some());
        let out = signing
            .gql(
                Some(&access),
                "mutation { logOut(input: { everywhere: true }) { endedSessions } }",
                json!({}),
            )
            .await;
        assert!(out["errors"].is_null(), "{out}");
        session_rounds += 1;
        let body = using.gql(Some(&access), MAY_READ, json!({ "o": org })).await;
        if error_code(&body) != "UNAUTHENTICATED" {
            stale += 1;
        }
    }
    println!(
        "three processes: {rounds} grant/revoke rounds ({decisions} decisions), {token_rounds} token revocations, {session_rounds} sign-outs everywhere: {stale} stale"
    );
    assert_eq!(stale, 0);
}

/// Forwards TCP to PostgreSQL until told to stall: then it stops forwarding without closing.
async fn stalling_proxy(target: String, stalled: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            let forward = |stalled: Arc<AtomicBool>| {
                move |mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf| async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    loop {
                        while stalled.load(Ordering::Acquire) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        match from.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                while stalled.load(Ordering::Acquire) {
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                }
                                if to.write_all(&buffer[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            };
            tokio::spawn(forward(stalled.clone())(in_read, out_write));
            tokio::spawn(forward(stalled.clone())(out_read, in_write));
        }
    });
    port
}

#[tokio::test]
async fn a_server_whose_database_stops_answering_never_answers_from_memory() {
    let Ok(admin_url) = std::env::var("GUILDHALL_TEST_DATABASE_URL") else {
        return;
    };
    if admin_url.is_empty() {
        return;
    }
    let database_url = fresh_database_url().await;
    let direct = spawn_with(test_args(&database_url)).await;
    let owner = direct.sign_up("owner@example.com", "Owner").await;
    let member = direct.sign_up("member@example.com", "Member").await;
    let org = direct.create_organization(&owner, "acme").await;
    let membership = direct.add_member(&org, &member).await;
    assert!(
        direct
            .change_role(&owner, true, &membership, &builtin_role("viewer"), None)
            .await["errors"]
            .is_null()
    );

    let stalled = Arc::new(AtomicBool::new(false));
    let host = database_url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host:port")
        .to_owned();
    let port = stalling_proxy(host.clone(), stalled.clone()).await;
    let mut args = test_args(&database_url.replace(&host, &format!("127.0.0.1:{port}")));
    args.max_execution_ms = 1_500;
    let behind = spawn_with(args).await;
    let ask = |app: &TestApp| {
        let token = member.access_token.clone();
        let org = org.clone();
        let app_url = app.graphql_url();
        let client = app.client.clone();
        async move {
            client
                .post(app_url)
                .bearer_auth(token)
                .json(&json!({ "query": MAY_READ, "variables": { "o": org } }))
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    // Warm: the member's access is kept.
    for _ in 0..3 {
        assert_eq!(ask(&behind).await["data"]["authorize"]["allowed"], true);
    }
    stalled.store(true, Ordering::Release);
    assert!(
        direct
            .change_role(&owner, false, &membership, &builtin_role("viewer"), None)
            .await["errors"]
            .is_null()
    );
    let started = Instant::now();
    let body = ask(&behind).await;
    let waited = started.elapsed();
    assert_ne!(
        body["data"]["authorize"]["allowed"], true,
        "answered from memory while its database was silent: {body}"
    );
    assert_eq!(error_code(&body), "UNAVAILABLE", "{body}");
    assert!(waited < Duration::from_secs(5), "the request hung for {waited:?}");
    println!("silent database connection: refused after {waited:?}, never answered from memory");
    stalled.store(false, Ordering::Release);
    // Once the connection forwards again, the revocation holds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = ask(&behind).await;
        if let Some(answer) = body["data"]["authorize"]["allowed"].as_bool() {
            assert!(!answer, "the revoked grant came back: {body}");
            break;
        }
        assert!(Instant::now() < deadline, "the server never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    behind.stop().await;
    direct.stop().await;
}
