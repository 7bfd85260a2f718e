//! The test harness: every test starts the real server on port 0 over a fresh database (an
//! SQLite file, or a new PostgreSQL database when GUILDHALL_TEST_DATABASE_URL is set) and talks
//! to it over real HTTP.
use std::net::SocketAddr;
use std::sync::Arc;

use guildhall::config::ServeArgs;
use guildhall::domain::App;
use guildhall::store::Store;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";
pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";

/// A server under test.
pub struct TestApp {
    pub address: String,
    /// The operators' listener (`/metrics`), on a port of its own as in `serve`.
    pub metrics_address: String,
    pub client: reqwest::Client,
    pub app: Arc<App>,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
    metrics_handle: JoinHandle<()>,
}

/// A fresh, empty database for one test.
pub async fn fresh_database_url() -> String {
    let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("GUILDHALL_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let admin = Database::connect(admin_url.as_str())
                .await
                .expect("connect to PostgreSQL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create a test database");
            let _ = admin.close().await;
            let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
            format!("{base}/{name}")
        }
        _ => {
            let dir = std::env::temp_dir().join("guildhall-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.db")).display())
        }
    }
}

/// Server settings for tests: a known JWT secret so tests can forge tokens.
pub fn test_args(database_url: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults_for(database_url);
    args.jwt_secret = Some(SECRET.to_owned());
    args.public_url = "https://guildhall.test".to_owned();
    args.database.database_max_connections = 8;
    // Tests remove ended grants themselves (`bindings::expire_due`), at the moment they choose.
    args.grant_expiry_sweep_seconds = 3_600;
    // The suite signs up many people from one address; the limit has its own test.
    args.sign_ups_per_address = 1_000_000;
    args
}

pub async fn spawn_app() -> TestApp {
    let url = fresh_database_url().await;
    spawn_with(test_args(&url)).await
}

pub async fn spawn_with(args: ServeArgs) -> TestApp {
    let server = guildhall::server::build(&args).await.expect("server starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel::<()>();
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_address = format!("http://{}", metrics_listener.local_addr().expect("address"));
    let metrics_router = server.metrics_router;
    let metrics_handle = tokio::spawn(async move {
        let _ = axum::serve(metrics_listener, metrics_router).await;
    });
    let service = server.router.into_make_service_with_connect_info::<SocketAddr>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    TestApp {
        address,
        metrics_address,
        metrics_handle,
        client: reqwest::Client::new(),
        app: server.app,
        database_url: args.database.database_url.clone(),
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// A signed-up user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.address)
    }

    /// POSTs one operation; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_response(token, query, variables).await.1
    }

    /// POSTs one operation; returns status, body and the response's request id.
    pub async fn gql_response(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value, String) {
        let mut request = self
            .client
            .post(self.graphql_url())
            .json(&json!({ "query": query, "variables": &variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body: Value = response.json().await.expect("JSON body");
        crate::conformance::check(query, None, &variables, &body);
        (status, body, request_id)
    }

    /// Signs up, signs in, and proves the address through the mailed link opened in that
    /// session: a verified person.
    pub async fn sign_up(&self, email: &str, name: &str) -> TestUser {
        let body = self.sign_up_unverified(email, name).await;
        assert!(body["errors"].is_null(), "sign up failed: {body}");
        let body = self
            .gql(
                None,
                "mutation($input: LogInInput!) { logIn(input: $input) { accessToken refreshToken user { id email } } }",
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        let payload = &body["data"]["logIn"];
        assert!(payload.is_object(), "log in after sign up failed: {body}");
        let user = TestUser {
            id: payload["user"]["id"].as_str().expect("id").to_owned(),
            email: email.to_owned(),

            access_token: payload["accessToken"].as_str().expect("access token").to_owned(),
            refresh_token: payload["refreshToken"].as_str().expect("refresh token").to_owned(),
        };
        let token = self.verification_token(email).await;
        let verified = self
            .gql(
                Some(&user.access_token),
                "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { user { emailVerified } } }",
                json!({ "i": { "token": token } }),
            )
            .await;
        assert_eq!(
            verified["data"]["verifyEmail"]["user"]["emailVerified"], true,
            "{verified}"
        );
        // The mail was read: it leaves the outbox, so that tests about mail see only their own.
        let store = self.store().await;
        sea_orm::ConnectionTrait::execute_raw(
            &store.conn,
            sea_orm::Statement::from_string(
                store.backend(),
                format!(
                    "DELETE FROM mail_outbox WHERE lower(recipient) = lower('{email}') AND kind = 'account_notice'"
                ),
            ),
        )
        .await
        .expect("read the mail");
        store.close().await;
        user
    }

    /// `signUp` alone; returns the whole answer.
    pub async fn sign_up_unverified(&self, email: &str, name: &str) -> Value {
        self.gql(
            None,
            "mutation($input: SignUpInput!) { signUp(input: $input) { message email } }",
            json!({ "input": { "email": email, "password": PASSWORD, "name": name } }),
        )
        .await
    }

    /// The token of the newest verification link mailed to `email`.
    pub async fn verification_token(&self, email: &str) -> String {
        let store = self.store().await;
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            &store.conn,
            sea_orm::Statement::from_string(
                store.backend(),
                format!(
                    "SELECT body FROM mail_outbox WHERE lower(recipient) = lower('{email}') AND kind = 'account_notice' ORDER BY created_at, id"
                ),
            ),
        )
        .await
        .expect("outbox");
        store.close().await;
        let body: String = rows
            .iter()
            .rev()
            .map(|r| r.try_get::<String>("", "body").expect("body"))
            .find(|b| b.contains("verify-email?token="))
            .unwrap_or_else(|| panic!("no verification link mailed to {email}"));
        let start = body.find("token=").expect("link") + "token=".len();
        body[start..]
            .split(|c: char| c.is_whitespace() || c == '&')
            .next()
            .expect("token")
            .to_owned()
    }

    /// Signs `email` in again (after the service clock moved past an access token's life);
    /// returns a fresh access token.
    pub async fn log_in(&self, email: &str) -> String {
        let body = self
            .gql(
                None,
                "mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }",
                json!({ "input": { "email": email, "password": PASSWORD } }),
            )
            .await;
        body["data"]["logIn"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("log in failed: {body}"))
            .to_owned()
    }

    /// Creates an organization as `user`; returns its global id.
    pub async fn create_organization(&self, user: &TestUser, slug: &str) -> String {
        let body = self
            .gql(
                Some(&user.access_token),
                "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }",
                json!({ "input": { "name": format!("Org {slug}"), "slug": slug } }),
            )
            .await;
        body["data"]["createOrganization"]["organization"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("create organization failed: {body}"))
            .to_owned()
    }

    /// A separate connection to the same database, to check what was (not) written.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url, 2).await.expect("connect")
    }

    /// Number of rows of a table.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let store = self.store().await;
        let row = store
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                store.backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        let n: i64 = row.try_get("", "n").expect("n");
        store.close().await;
        n
    }

    /// One scrape of `/metrics`.
    pub async fn scrape(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.metrics_address))
            .send()
            .await
            .expect("scrape");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    }

    /// Stops the server and waits until it has released its port and database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
        self.metrics_handle.abort();
        self.app.store.clone().close().await;
    }
}

/// The first error's `extensions.code`, or "" when there is none.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The raw id inside a global id.
pub fn raw_id(global: &str) -> uuid::Uuid {
    guildhall::graphql::ids::decode_any(&async_graphql::ID(global.to_owned()))
        .expect("a global id")
        .1
}

/// The global id of a built-in role.
pub fn builtin_role(name: &str) -> String {
    guildhall::graphql::ids::encode(
        guildhall::graphql::ids::NodeKind::Role,
        guildhall::domain::builtins::role_id(name),
    )
    .0
}

/// The global id of a built-in keychain.
pub fn builtin_keychain(name: &str) -> String {
    guildhall::graphql::ids::encode(
        guildhall::graphql::ids::NodeKind::Keychain,
        guildhall::domain::builtins::keychain_id(name),
    )
    .0
}

impl TestApp {
    /// Makes `user` an unassigned member of an organization (what accepting an invitation does);
    /// returns the membership's global id.
    pub async fn add_member(&self, organization: &str, user: &TestUser) -> String {
        let membership = guildhall::domain::members::add_member(&self.app, raw_id(organization), raw_id(&user.id))
            .await
            .expect("add member");
        guildhall::graphql::ids::encode(guildhall::graphql::ids::NodeKind::Membership, membership.id).0
    }

    /// grantRole or revokeRole as `actor`; returns the response body.
    pub async fn change_role(
        &self,
        actor: &TestUser,
        grant: bool,
        membership: &str,
        role: &str,
        workspace: Option<&str>,
    ) -> Value {
        let (field, input) = if grant {
            ("grantRole", "GrantRoleInput")
        } else {
            ("revokeRole", "RevokeRoleInput")
        };
        self.gql(
            Some(&actor.access_token),
            &format!("mutation($input: {input}!) {{ {field}(input: $input) {{ membership {{ id }} }} }}"),
            json!({ "input": { "membershipId": membership, "roleId": role, "workspaceId": workspace } }),
        )
        .await
    }

    /// Creates a workspace as `user`; returns its global id.
    pub async fn create_workspace(&self, user: &TestUser, organization: &str, slug: &str) -> String {
        let body = self
            .gql(
                Some(&user.access_token),
                "mutation($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { id } } }",
                json!({ "input": { "organizationId": organization, "name": slug, "slug": slug } }),
            )
            .await;
        body["data"]["createWorkspace"]["workspace"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("create workspace failed: {body}"))
            .to_owned()
    }

    /// `authorize` for `user`: (allowed, whole answer).
    pub async fn authorize(
        &self,
        user: &TestUser,
        organization: &str,
        key: &str,
        workspace: Option<&str>,
    ) -> (bool, Value) {
        let body = self
            .gql(
                Some(&user.access_token),
                "query($o: ID!, $k: String!, $w: ID) { authorize(organizationId: $o, key: $k, workspaceId: $w) {
                    allowed reason grants { key role { name } workspace { id } keychain { name } } } }",
                json!({ "o": organization, "k": key, "w": workspace }),
            )
            .await;
        let answer = body["data"]["authorize"].clone();
        assert!(answer.is_object(), "authorize failed: {body}");
        (answer["allowed"].as_bool().expect("allowed"), answer)
    }
}

/// Inserts `count` users with memberships (no roles) straight into the database: setup for
/// tests about large organizations, where signing up 10,000 people over HTTP would only measure
/// password hashing.
pub async fn bulk_members(app: &TestApp, organization: &str, count: usize) {
    bulk_members_with_role(app, organization, count, None).await;
}

/// [`bulk_members`], each member bound to `role` organization-wide when given.
pub async fn bulk_members_with_role(app: &TestApp, organization: &str, count: usize, role: Option<uuid::Uuid>) {
    let store = app.store().await;
    guildhall::store::fixtures::bulk_members(&store, raw_id(organization), count, role)
        .await
        .expect("bulk members");
    store.close().await;
}
