//! Verified addresses: signing up proves nothing until the mailed link is opened, so nobody can
//! squat the account an invitation will reach, and signing up tells no one which addresses have
//! accounts.
use std::time::Instant;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, builtin_role, error_code, spawn_app};

async fn log_in(app: &crate::helpers::TestApp, email: &str) -> String {
    app.log_in(email).await
}

#[tokio::test]
async fn an_unverified_account_cannot_take_an_invitation_or_make_an_organization_until_it_proves_its_address() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    // The squatter signs up first with the address the owner will invite.
    let squat = app.sign_up_unverified("victim@corp.example", "Squatter").await;
    assert!(squat["errors"].is_null(), "{squat}");
    let squatter = log_in(&app, "victim@corp.example").await;
    let viewer = app
        .gql(Some(&squatter), "{ viewer { email emailVerified } }", json!({}))
        .await;
    assert_eq!(viewer["data"]["viewer"]["emailVerified"], false, "{viewer}");
    let invited = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { acceptUrl } }",
            json!({ "i": { "organizationId": org, "email": "victim@corp.example", "roleBindings": [{ "roleId": builtin_role("viewer") }] } }),
        )
        .await;
    let url = invited["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let token = url.split_once("token=").expect("token").1.to_owned();
    let refused = app
        .gql(
            Some(&squatter),
            "mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { membership { id } } }",
            json!({ "i": { "token": token } }),
        )
        .await;
    assert_eq!(error_code(&refused), "EMAIL_NOT_VERIFIED", "{refused}");
    let refused = app
        .gql(
            Some(&squatter),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({ "i": { "name": "Mine", "slug": "squat" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "EMAIL_NOT_VERIFIED", "{refused}");
    assert_eq!(app.count_rows("memberships").await, 1);
    // The squatter sees none of the address's invitations and cannot decline them.
    let seen = app
        .gql(Some(&squatter), "{ viewer { pendingInvitations { id } } }", json!({}))
        .await;
    assert_eq!(seen["data"]["viewer"]["pendingInvitations"], json!([]), "{seen}");
    // The address's owner clicks the verification mail: without a session of the account (the
    // squatter's password) the link verifies nothing, nor in another account's session.
    let link = app.verification_token("victim@corp.example").await;
    let verify = "mutation($i: VerifyEmailInput!) { verifyEmail(input: $i) { user { emailVerified } } }";
    let anonymous = app.gql(None, verify, json!({ "i": { "token": link } })).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let elsewhere = app
        .gql(Some(&owner.access_token), verify, json!({ "i": { "token": link } }))
        .await;
    assert_eq!(error_code(&elsewhere), "BAD_USER_INPUT", "{elsewhere}");
    // The owner of the address takes the account back with a reset: the squatter is signed out,
    // their password is gone, and the address counts as proved.
    let asked = app
        .gql(
            None,
            "mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { message } }",
            json!({ "i": { "email": "victim@corp.example" } }),
        )
        .await;
    assert!(asked["errors"].is_null(), "{asked}");
    let store = app.store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            "SELECT body FROM mail_outbox WHERE recipient = 'victim@corp.example' AND body LIKE '%reset-password?token=%'".to_owned(),
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    let body: String = rows[0].try_get("", "body").expect("body");
    let reset = body
        .split("token=")
        .nth(1)
        .expect("token")
        .split_whitespace()
        .next()
        .expect("token")
        .to_owned();
    let done = app
        .gql(
            None,
            "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { signedOutEverywhere } }",
            json!({ "i": { "token": reset, "newPassword": "the real owner's password" } }),
        )
        .await;
    assert!(done["errors"].is_null(), "{done}");
    let gone = app.gql(Some(&squatter), "{ viewer { id } }", json!({})).await;
    assert_eq!(error_code(&gone), "UNAUTHENTICATED", "{gone}");
    let signed_in = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { accessToken user { emailVerified } } }",
            json!({ "i": { "email": "victim@corp.example", "password": "the real owner's password" } }),
        )
        .await;
    assert_eq!(signed_in["data"]["logIn"]["user"]["emailVerified"], true, "{signed_in}");
    let real = signed_in["data"]["logIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let accepted = app
        .gql(
            Some(&real),
            "mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { membership { id } } }",
            json!({ "i": { "token": token } }),
        )
        .await;
    assert!(accepted["errors"].is_null(), "{accepted}");
    app.stop().await;
}

#[tokio::test]
async fn accepting_with_sign_up_verifies_by_the_invitations_own_link_and_unverified_accounts_expire() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let invited = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { acceptUrl } }",
            json!({ "i": { "organizationId": org, "email": "new@example.com" } }),
        )
        .await;
    let url = invited["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let token = url.split_once("token=").expect("token").1.to_owned();
    let joined = app
        .gql(
            None,
            "mutation($i: AcceptInvitationWithSignUpInput!) { acceptInvitationWithSignUp(input: $i) { auth { user { emailVerified } } } }",
            json!({ "i": { "token": token, "name": "New", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        joined["data"]["acceptInvitationWithSignUp"]["auth"]["user"]["emailVerified"], true,
        "{joined}"
    );
    // An account never verified goes after the retention period; a verified one stays.
    app.sign_up_unverified("never@example.com", "Never").await;
    let users_before = app.count_rows("users").await;
    let policy = guildhall::domain::retention::Policy::default();
    let pruned = guildhall::domain::retention::prune(&app.app, &policy, chrono::Utc::now() + chrono::Duration::days(8))
        .await
        .expect("prune");
    assert_eq!(pruned.unverified_accounts, 1, "{pruned:?}");
    assert_eq!(app.count_rows("users").await, users_before - 1);
    app.stop().await;
}

#[tokio::test]
async fn signing_up_answers_alike_for_taken_and_free_addresses() {
    let app = spawn_app().await;
    app.sign_up("taken@example.com", "Taken").await;
    let users_before = app.count_rows("users").await;
    let answer = |body: &Value| body["data"]["signUp"]["message"].clone();
    // Alternate taken and free addresses; time each.
    let (mut taken_ms, mut free_ms) = (Vec::new(), Vec::new());
    // Four rounds: with the first sign-up, five attempts on the taken address, its hourly limit.
    for round in 0..4 {
        let started = Instant::now();
        let taken = app
            .gql(
                None,
                "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
                json!({ "i": { "email": if round % 2 == 0 { "taken@example.com" } else { "TAKEN@example.com" }, "password": PASSWORD, "name": "T" } }),
            )
            .await;
        taken_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        let free = app
            .gql(
                None,
                "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
                json!({ "i": { "email": format!("free{round}@example.com"), "password": PASSWORD, "name": "F" } }),
            )
            .await;
        free_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(taken["errors"].is_null() && free["errors"].is_null(), "{taken} {free}");
        assert_eq!(answer(&taken), answer(&free));
    }
    // Nothing was created for the taken address; its owner was told.
    assert_eq!(app.count_rows("users").await, users_before + 4);
    let store = app.store().await;
    let told = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            "SELECT body FROM mail_outbox WHERE recipient = 'taken@example.com' AND body LIKE '%already has one%'"
                .to_owned(),
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    assert_eq!(told.len(), 4, "one notice per attempt on the taken address");
    // A sixth attempt within the hour, in any spelling, is refused like any other address's.
    let limited = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { message } }",
            json!({ "i": { "email": " Taken@Example.com ", "password": PASSWORD, "name": "T" } }),
        )
        .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
        v[v.len() / 2]
    };
    println!(
        "signUp median: taken {:.1} ms, free {:.1} ms",
        median(&mut taken_ms),
        median(&mut free_ms)
    );
    app.stop().await;
}

#[tokio::test]
async fn the_upgrade_marks_accounts_that_existed_before_verification_as_verified() {
    use migration::MigratorTrait;
    use sea_orm::{ConnectionTrait, EntityTrait, Statement, Value as SqlValue};
    let url = crate::helpers::fresh_database_url().await;
    let db = sea_orm::Database::connect(url.as_str()).await.expect("connect");
    // Every migration before the one adding verification.
    let before = migration::Migrator::migrations()
        .iter()
        .position(|m| m.name().contains("email_verification"))
        .expect("the verification migration");
    migration::Migrator::up(&db, Some(before as u32))
        .await
        .expect("older schema");
    let id = uuid::Uuid::now_v7();
    let created = chrono::Utc::now() - chrono::Duration::days(400);
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO users (id, kind, email, email_canonical, name, password_hash, token_version, created_at, updated_at) \
             VALUES ($1, 'HUMAN', 'old@example.com', 'old@example.com', 'Old', NULL, 0, $2, $2)"
        }
        _ => {
            "INSERT INTO users (id, kind, email, email_canonical, name, password_hash, token_version, created_at, updated_at) \
             VALUES (?, 'HUMAN', 'old@example.com', 'old@example.com', 'Old', NULL, 0, ?, ?)"
        }
    };
    let mut values = vec![SqlValue::from(id), SqlValue::from(created)];
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        values.push(SqlValue::from(created));
    }
    db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values))
        .await
        .expect("an account of the older schema");
    migration::Migrator::up(&db, None).await.expect("upgrade");
    let user = guildhall::store::entities::users::Entity::find_by_id(id)
        .one(&db)
        .await
        .expect("read")
        .expect("the account");
    assert!(user.email_verified_at.is_some(), "{user:?}");
    let _ = db.close().await;
}
