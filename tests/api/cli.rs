//! The command line and the HTTP edges around GraphQL: what an operator and a browser see.
use std::process::Command;

use crate::helpers::{fresh_database_url, spawn_with, test_args};

#[tokio::test]
async fn migrate_status_prints_each_migration_and_whether_it_is_applied() {
    let url = fresh_database_url().await;
    let status = || {
        let output = Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["migrate", "status"])
            .env("GUILDHALL_DATABASE_URL", &url)
            .env("GUILDHALL_LOG", "error")
            .output()
            .expect("run guildhall");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("text")
    };
    let before = status();
    assert!(before.lines().count() >= 4, "{before}");
    assert!(before.lines().all(|l| l.starts_with("pending ")), "{before}");
    let up = Command::new(env!("CARGO_BIN_EXE_guildhall"))
        .args(["migrate", "up"])
        .env("GUILDHALL_DATABASE_URL", &url)
        .env("GUILDHALL_LOG", "error")
        .output()
        .expect("run guildhall");
    assert!(up.status.success());
    let after = status();
    assert!(
        after.lines().all(|l| l.starts_with("applied ")) && after.contains("m20261125_000002_change_clock"),
        "{after}"
    );
}

#[tokio::test]
async fn browsers_may_send_trace_and_request_id_headers_cross_origin() {
    let mut args = test_args(&fresh_database_url().await);
    args.cors_origins = vec!["https://app.example".to_owned()];
    let app = spawn_with(args).await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.graphql_url())
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,traceparent,x-request-id",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    let allowed = response
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    for header in ["content-type", "authorization", "traceparent", "x-request-id"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }
    app.stop().await;
}

/// `guildhall backup PATH` copies an SQLite database while a server is using it: the copy opens
/// on its own, passes SQLite's integrity check and holds what was committed; an existing PATH
/// is refused and left alone. PostgreSQL is refused with a pointer to pg_dump.
#[tokio::test]
async fn backup_copies_a_database_in_use_and_refuses_to_overwrite() {
    let url = fresh_database_url().await;
    let app = spawn_with(test_args(&url)).await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    app.create_organization(&ada, "acme").await;
    let dir = std::env::temp_dir().join("guildhall-tests");
    std::fs::create_dir_all(&dir).expect("dir");
    let target = dir.join(format!("backup-{}.db", uuid::Uuid::new_v4().simple()));
    let backup = |path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["backup", path.to_str().expect("utf-8")])
            .env("GUILDHALL_DATABASE_URL", &url)
            .env("GUILDHALL_LOG", "error")
            .output()
            .expect("run guildhall")
    };
    let output = backup(&target);
    if url.starts_with("postgres") {
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
        app.stop().await;
        return;
    }
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("backed up to"));
    // The server kept serving meanwhile, and the copy stands on its own.
    assert_eq!(app.count_rows("organizations").await, 1);
    let copy = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", target.display()).as_str())
        .await
        .expect("open the copy");
    let one = |sql: &'static str| {
        let copy = copy.clone();
        async move {
            sea_orm::ConnectionTrait::query_one_raw(
                &copy,
                sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, sql),
            )
            .await
            .expect("query")
            .expect("row")
        }
    };
    let check: String = one("PRAGMA integrity_check").await.try_get_by_index(0).expect("text");
    assert_eq!(check, "ok");
    let organizations: i64 = one("SELECT COUNT(*) FROM organizations")
        .await
        .try_get_by_index(0)
        .expect("count");
    assert_eq!(organizations, 1);
    let users: i64 = one("SELECT COUNT(*) FROM users")
        .await
        .try_get_by_index(0)
        .expect("count");
    assert_eq!(users, 1);
    let _ = copy.close().await;

    let size = std::fs::metadata(&target).expect("copy").len();
    let again = backup(&target);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::metadata(&target).expect("copy").len(), size, "left alone");
    let _ = std::fs::remove_file(&target);
    app.stop().await;
}

/// `guildhall audit export --since` writes each event from then on as one JSON line, oldest
/// first, and nothing from before.
#[tokio::test]
async fn audit_export_writes_json_lines_from_a_time_on() {
    let url = fresh_database_url().await;
    let app = spawn_with(test_args(&url)).await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let organization = app.create_organization(&ada, "acme").await;
    app.create_workspace(&ada, &organization, "web").await;
    let export = |since: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["audit", "export", "--since", since])
            .env("GUILDHALL_DATABASE_URL", &url)
            .env("GUILDHALL_LOG", "error")
            .output()
            .expect("run guildhall");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("text")
    };
    let all = export("2000-01-01T00:00:00Z");
    let lines: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len() as i64, app.count_rows("audit_events").await, "{all}");
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().expect("action")).collect();
    let create = actions
        .iter()
        .position(|a| *a == "organization.create")
        .expect("organization.create");
    let workspace = actions
        .iter()
        .position(|a| *a == "workspace.create")
        .expect("workspace.create");
    assert!(create < workspace, "oldest first: {actions:?}");
    let times: Vec<&str> = lines.iter().map(|l| l["occurredAt"].as_str().expect("time")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(export("2999-01-01T00:00:00Z").is_empty());
    app.stop().await;
}

/// `guildhall demo` seeds an organization to click through: everyone it prints can sign in and
/// sees what their role gives them, the service account's token works, the audit log tells the
/// story, and a second run changes nothing.
#[tokio::test]
async fn the_demo_seeds_an_organization_everyone_printed_can_use() {
    let url = fresh_database_url().await;
    let demo = || {
        Command::new(env!("CARGO_BIN_EXE_guildhall"))
            .args(["demo"])
            .env("GUILDHALL_DATABASE_URL", &url)
            .env("GUILDHALL_LOG", "error")
            .output()
            .expect("run guildhall")
    };
    let output = demo();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).expect("text");
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("ghs_"))
        .expect("a service account token")
        .to_owned();
    let emails: Vec<&str> = printed
        .split_whitespace()
        .filter(|w| w.ends_with("@acme.example") && !w.starts_with("newcomer"))
        .collect();
    assert_eq!(emails.len(), 9, "{printed}");

    let app = spawn_with(test_args(&url)).await;
    let query = "{ organization(slug: \"acme-demo\") { members(first: 50) { totalCount } workspaces(first: 10) { totalCount } invitations { totalCount } auditLog { totalCount } viewerKeys } }";
    for email in [
        "olivia@acme.example",
        "ben@acme.example",
        "vic@acme.example",
        "mo@acme.example",
    ] {
        let login = app
            .gql(
                None,
                "mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }",
                serde_json::json!({ "input": { "email": email, "password": guildhall::demo::PASSWORD } }),
            )
            .await;
        let access = login["data"]["logIn"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("{email}: {login}"));
        let body = app.gql(Some(access), query, serde_json::json!({})).await;
        let org = &body["data"]["organization"];
        assert!(
            org["viewerKeys"].as_array().is_some_and(|k| !k.is_empty()),
            "{email}: {body}"
        );
        if email.starts_with("olivia") {
            assert_eq!(org["members"]["totalCount"], 10, "{body}");
            assert_eq!(org["workspaces"]["totalCount"], 3, "{body}");
            assert_eq!(org["invitations"]["totalCount"], 1, "{body}");
            assert!(org["auditLog"]["totalCount"].as_u64().expect("events") >= 15, "{body}");
        }
        if email.starts_with("mo") {
            // A plain member sees the people but not the log.
            assert_eq!(org["members"]["totalCount"], 10, "{body}");
            assert!(org["auditLog"].is_null(), "{body}");
        }
    }
    let with_token = app
        .gql(
            Some(&token),
            "{ organization(slug: \"acme-demo\") { name } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        with_token["data"]["organization"]["name"], "Acme Robotics",
        "{with_token}"
    );

    let users = app.count_rows("users").await;
    let again = demo();
    assert!(!again.status.success());
    assert_eq!(app.count_rows("users").await, users, "a second run changes nothing");
    app.stop().await;
}
