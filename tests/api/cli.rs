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
