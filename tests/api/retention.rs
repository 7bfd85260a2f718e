//! Retention: rows past their use are pruned in small batches, and nothing still in use goes.
use chrono::{Duration, Utc};
use guildhall::domain::retention::{self, Policy, Pruned};
use guildhall::store::entities::{audit_events, invitations, login_failures, mail_outbox, refresh_tokens};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::helpers::{PASSWORD, error_code, spawn_app};

const LOG_IN: &str = "mutation($input: LogInInput!) { logIn(input: $input) { accessToken refreshToken } }";
const REFRESH: &str = "mutation($input: RefreshSessionInput!) { refreshSession(input: $input) { refreshToken } }";

#[tokio::test]
async fn rows_past_retention_are_pruned_in_batches_and_nothing_in_use_goes() {
    let app = spawn_app().await;
    let conn = &app.app.store.conn;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let organization = app.create_organization(&ada, "acme").await;
    for email in ["bob@example.com", "cy@example.com", "dan@example.com"] {
        let body = app
            .gql(
                Some(&ada.access_token),
                "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { acceptUrl } }",
                json!({ "input": { "organizationId": organization, "email": email } }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    // Two failed sign-ins, and a second session (a second refresh token).
    for _ in 0..2 {
        let body = app
            .gql(
                None,
                LOG_IN,
                json!({ "input": { "email": "ada@example.com", "password": "wrong password!" } }),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let second = app
        .gql(
            None,
            LOG_IN,
            json!({ "input": { "email": "ada@example.com", "password": PASSWORD } }),
        )
        .await;
    let second_refresh = second["data"]["logIn"]["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // Age what should go: every audit event so far (one more comes after), bob's invitation
    // (expired 40 days ago, never accepted) and dan's (expired as long ago, but accepted), the
    // mail to bob (delivered 40 days ago) and to cy (given up on, 40 days old), one failed
    // sign-in, and the first session's refresh token.
    let now = Utc::now();
    let old = now - Duration::days(400);
    let long_ago = now - Duration::days(40);
    audit_events::Entity::update_many()
        .col_expr(audit_events::Column::OccurredAt, Expr::value(old))
        .exec(conn)
        .await
        .expect("age events");
    let aged_events = audit_events::Entity::find().count(conn).await.expect("count");
    assert!(aged_events >= 4, "{aged_events}");
    app.create_workspace(&ada, &organization, "fresh").await;
    for (email, status) in [("bob@example.com", "PENDING"), ("dan@example.com", "ACCEPTED")] {
        invitations::Entity::update_many()
            .col_expr(invitations::Column::ExpiresAt, Expr::value(long_ago))
            .col_expr(invitations::Column::Status, Expr::value(status))
            .filter(invitations::Column::Email.eq(email))
            .exec(conn)
            .await
            .expect("age invitation");
    }
    mail_outbox::Entity::update_many()
        .col_expr(mail_outbox::Column::SentAt, Expr::value(long_ago))
        .filter(mail_outbox::Column::Recipient.eq("bob@example.com"))
        .exec(conn)
        .await
        .expect("age mail");
    mail_outbox::Entity::update_many()
        .col_expr(
            mail_outbox::Column::Attempts,
            Expr::value(guildhall::domain::mailer::MAX_ATTEMPTS),
        )
        .col_expr(mail_outbox::Column::CreatedAt, Expr::value(long_ago))
        .filter(mail_outbox::Column::Recipient.eq("cy@example.com"))
        .exec(conn)
        .await
        .expect("give up on mail");
    let first_failure = login_failures::Entity::find()
        .order_by_asc(login_failures::Column::Id)
        .one(conn)
        .await
        .expect("read")
        .expect("a failure");
    login_failures::Entity::update_many()
        .col_expr(login_failures::Column::OccurredAt, Expr::value(old))
        .filter(login_failures::Column::Id.eq(first_failure.id))
        .exec(conn)
        .await
        .expect("age failure");
    let first_token = refresh_tokens::Entity::find()
        .order_by_asc(refresh_tokens::Column::Id)
        .one(conn)
        .await
        .expect("read")
        .expect("a token");
    refresh_tokens::Entity::update_many()
        .col_expr(
            refresh_tokens::Column::ExpiresAt,
            Expr::value(now - Duration::minutes(1)),
        )
        .filter(refresh_tokens::Column::Id.eq(first_token.id))
        .exec(conn)
        .await
        .expect("expire token");

    // Each failed sign-in is counted per email and per client address.
    let failures = app.count_rows("login_failures").await;
    assert_eq!(failures, 4);
    // Audit events kept forever: everything else past retention goes, two rows per statement.
    let small_batches = Policy {
        audit: None,
        batch: 2,
        ..Policy::default()
    };
    let pruned = retention::prune(&app.app, &small_batches, now).await.expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            audit_events: 0,
            login_failures: 1,
            refresh_tokens: 1,
            invitations: 1,
            mail: 2,
            unverified_accounts: 0,
            account_tokens: 0,
            login_challenges: 0,
        }
    );
    // With audit retention, the aged events go too, in batches of two, and the fresh one stays.
    let with_audit = Policy {
        batch: 2,
        ..Policy::default()
    };
    let pruned = retention::prune(&app.app, &with_audit, now).await.expect("prune");
    assert_eq!(pruned.audit_events, aged_events);
    assert_eq!(pruned.total(), aged_events, "{pruned:?}");
    assert_eq!(
        retention::prune(&app.app, &with_audit, now).await.expect("prune"),
        Pruned::default(),
        "a second prune finds nothing"
    );

    assert!(app.count_rows("audit_events").await >= 1);
    assert_eq!(app.count_rows("login_failures").await, failures - 1);
    assert_eq!(app.count_rows("mail_outbox").await, 1, "dan's mail is still to send");
    let left: Vec<String> = invitations::Entity::find()
        .order_by_asc(invitations::Column::Email)
        .all(conn)
        .await
        .expect("read")
        .into_iter()
        .map(|i| i.email)
        .collect();
    assert_eq!(left, ["cy@example.com", "dan@example.com"]);
    // The session whose token did not expire still refreshes.
    let refreshed = app
        .gql(None, REFRESH, json!({ "input": { "refreshToken": second_refresh } }))
        .await;
    assert!(
        refreshed["data"]["refreshSession"]["refreshToken"].is_string(),
        "{refreshed}"
    );
    app.stop().await;
}

#[tokio::test]
async fn negative_retention_is_refused_at_start() {
    let url = crate::helpers::fresh_database_url().await;
    let mut args = crate::helpers::test_args(&url);
    args.audit_retention_days = -1;
    let refused = guildhall::server::build(&args).await.err().expect("refused");
    assert!(refused.to_string().contains("audit retention"), "{refused}");
}
