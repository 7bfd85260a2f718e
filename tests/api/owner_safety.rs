//! Owner safety: the plan's minimum of owners holds, owners are warned while the organization
//! has no more than that, and a confirmed recovery contact can recover ownership only after a
//! waiting period during which every owner is mailed and may cancel.
use serde_json::{Value, json};

use crate::helpers::{TestApp, builtin_role, error_code, spawn_app, spawn_with, test_args};

const SAFETY: &str = "{ organization(slug: \"acme\") { ownerSafety { owners minimum atRisk
  recoveryContact { email verifiedAt } pendingRecovery { status requesterName readyAt } } } }";

async fn safety(app: &TestApp, token: &str) -> Value {
    let body = app.gql(Some(token), SAFETY, json!({})).await;
    body["data"]["organization"]["ownerSafety"].clone()
}

/// Mails to `recipient` of owner recovery, oldest first.
async fn mails(app: &TestApp, recipient: &str) -> Vec<String> {
    let store = app.store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            format!(
                "SELECT body FROM mail_outbox WHERE recipient = '{recipient}' AND kind = 'owner_recovery' ORDER BY id"
            ),
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    rows.iter().map(|r| r.try_get("", "body").expect("body")).collect()
}

fn token_in(mail: &str) -> String {
    let start = mail.find("token=").unwrap_or_else(|| panic!("no link in {mail}")) + "token=".len();
    mail[start..].split_whitespace().next().expect("token").to_owned()
}

async fn mutate(app: &TestApp, token: Option<&str>, name: &str, input: Value, selection: &str) -> Value {
    let first = name[..1].to_uppercase() + &name[1..];
    app.gql(
        token,
        &format!("mutation($i: {first}Input!) {{ {name}(input: $i) {{ {selection} }} }}"),
        json!({ "i": input }),
    )
    .await
}

#[tokio::test]
async fn a_lone_owner_is_warned_and_the_plan_minimum_of_owners_holds() {
    let mut args = test_args(&crate::helpers::fresh_database_url().await);
    args.plan_limits = Some(
        r#"{"FREE": {"admins": 10, "members": 25, "customRoles": 10, "customKeychains": 10, "workspaces": 5}, "TEAM": {"admins": 10, "members": 500, "customRoles": 50, "customKeychains": 50, "workspaces": 50, "minOwners": 2}}"#
            .to_owned(),
    );
    let app = spawn_with(args).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&owner, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    let ada_membership = app.add_member(&org, &ada).await;
    let body = app
        .change_role(&owner, true, &ada_membership, &builtin_role("admin"), None)
        .await;
    assert!(body["errors"].is_null(), "{body}");

    assert_eq!(
        safety(&app, &owner.access_token).await,
        json!({ "owners": 1, "minimum": 1, "atRisk": true, "recoveryContact": null, "pendingRecovery": null })
    );
    // A service account holding `owner` keeps nobody in charge: it is not counted, and the one
    // person who owns the organization still cannot leave it to the robot.
    let robot = mutate(
        &app,
        Some(&owner.access_token),
        "createServiceAccount",
        json!({ "organizationId": org, "name": "robot", "roleBindings": [{ "roleId": builtin_role("owner") }] }),
        "membership { id }",
    )
    .await;
    assert!(robot["errors"].is_null(), "{robot}");
    assert_eq!(safety(&app, &owner.access_token).await["owners"], 1);
    let left = mutate(
        &app,
        Some(&owner.access_token),
        "leaveOrganization",
        json!({ "organizationId": org }),
        "leftOrganizationId",
    )
    .await;
    assert_eq!(error_code(&left), "LAST_OWNER", "{left}");
    // Only owners see it: an admin gets null and FORBIDDEN, and the rest still answers.
    let body = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { name ownerSafety { owners } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"]["organization"]["name"].is_string(), "{body}");

    let body = app
        .change_role(&owner, true, &bob_membership, &builtin_role("owner"), None)
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(safety(&app, &owner.access_token).await["atRisk"], false);

    // On a plan that asks for two owners, neither of the two may go.
    let body = mutate(
        &app,
        Some(&owner.access_token),
        "updateOrganization",
        json!({ "organizationId": org, "plan": "TEAM" }),
        "organization { plan }",
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        safety(&app, &owner.access_token).await,
        json!({ "owners": 2, "minimum": 2, "atRisk": true, "recoveryContact": null, "pendingRecovery": null })
    );
    let body = app
        .change_role(&owner, false, &bob_membership, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&body), "LAST_OWNER", "{body}");
    let body = mutate(
        &app,
        Some(&bob.access_token),
        "leaveOrganization",
        json!({ "organizationId": org }),
        "leftOrganizationId",
    )
    .await;
    assert_eq!(error_code(&body), "LAST_OWNER", "{body}");
    // Nor may one owner step down in favour of the other.
    let body = mutate(
        &app,
        Some(&owner.access_token),
        "transferOwnership",
        json!({ "organizationId": org, "toMembershipId": bob_membership, "stepDown": true }),
        "membership { id }",
    )
    .await;
    assert_eq!(error_code(&body), "LAST_OWNER", "{body}");
    assert_eq!(safety(&app, &owner.access_token).await["owners"], 2);
    app.stop().await;
}

#[tokio::test]
async fn ownership_is_recovered_through_a_confirmed_contact_only_after_the_owners_could_cancel() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&owner, "acme").await;
    let ada_membership = app.add_member(&org, &ada).await;
    let body = app
        .change_role(&owner, true, &ada_membership, &builtin_role("admin"), None)
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let set = |email: &str| json!({ "organizationId": org, "email": email });

    // Naming the contact is for owners, signed in: not an admin, not an owner's API token.
    let body = mutate(
        &app,
        Some(&ada.access_token),
        "setOwnerRecoveryContact",
        set("rescue@example.com"),
        "recoveryContact { email }",
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let minted = mutate(
        &app,
        Some(&owner.access_token),
        "createApiToken",
        json!({ "name": "ci", "organizationId": org }),
        "token",
    )
    .await;
    let api_token = minted["data"]["createApiToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{minted}"))
        .to_owned();
    let body = mutate(
        &app,
        Some(&api_token),
        "setOwnerRecoveryContact",
        set("rescue@example.com"),
        "recoveryContact { email }",
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(app.count_rows("owner_recovery_contacts").await, 0);

    let body = mutate(
        &app,
        Some(&owner.access_token),
        "setOwnerRecoveryContact",
        set("Rescue@Example.com"),
        "recoveryContact { email verifiedAt }",
    )
    .await;
    assert_eq!(
        body["data"]["setOwnerRecoveryContact"]["recoveryContact"],
        json!({ "email": "Rescue@Example.com", "verifiedAt": null }),
        "{body}"
    );
    assert_eq!(mails(&app, "owner@example.com").await.len(), 1, "the owners are told");
    let confirm_mail = mails(&app, "Rescue@Example.com").await;
    assert_eq!(confirm_mail.len(), 1);
    let confirm_token = token_in(&confirm_mail[0]);

    // Unconfirmed, the contact cannot start anything: asking mails nothing.
    let ask = |email: &str| json!({ "organizationId": org, "email": email });
    let asked = mutate(
        &app,
        None,
        "requestOwnershipRecovery",
        ask("rescue@example.com"),
        "message",
    )
    .await;
    let message = asked["data"]["requestOwnershipRecovery"]["message"].clone();
    assert!(message.is_string(), "{asked}");
    assert_eq!(mails(&app, "Rescue@Example.com").await.len(), 1);

    let body = mutate(
        &app,
        None,
        "confirmOwnerRecoveryContact",
        json!({ "token": confirm_token }),
        "recoveryContact { verifiedAt }",
    )
    .await;
    assert!(
        body["data"]["confirmOwnerRecoveryContact"]["recoveryContact"]["verifiedAt"].is_string(),
        "{body}"
    );
    let again = mutate(
        &app,
        None,
        "confirmOwnerRecoveryContact",
        json!({ "token": confirm_token }),
        "recoveryContact { verifiedAt }",
    )
    .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "a link works once: {again}");

    // Another address, or an unknown organization, gets the very same answer and no mail.
    for variables in [
        ask("someone@example.com"),
        json!({ "organizationId": guildhall::graphql::ids::encode(guildhall::graphql::ids::NodeKind::Organization, uuid::Uuid::now_v7()).0, "email": "rescue@example.com" }),
    ] {
        let body = mutate(&app, None, "requestOwnershipRecovery", variables, "message").await;
        assert_eq!(body["data"]["requestOwnershipRecovery"]["message"], message, "{body}");
    }
    assert_eq!(mails(&app, "Rescue@Example.com").await.len(), 1);
    // The contact's own address gets one link, however often it is asked for.
    for _ in 0..3 {
        let body = mutate(
            &app,
            None,
            "requestOwnershipRecovery",
            ask("RESCUE@example.com"),
            "message",
        )
        .await;
        assert_eq!(body["data"]["requestOwnershipRecovery"]["message"], message, "{body}");
    }
    let sent = mails(&app, "Rescue@Example.com").await;
    assert_eq!(sent.len(), 2, "one more mail, not three");
    let start_token = token_in(&sent[1]);

    // Whoever holds the link and is signed in starts the recovery; owners are mailed.
    let rita = app.sign_up("rita@example.com", "Rita").await;
    let started = mutate(
        &app,
        Some(&rita.access_token),
        "startOwnershipRecovery",
        json!({ "token": start_token }),
        "recovery { status requesterName readyAt }",
    )
    .await;
    let recovery = &started["data"]["startOwnershipRecovery"]["recovery"];
    assert_eq!(recovery["status"], "PENDING", "{started}");
    let ready: chrono::DateTime<chrono::Utc> = recovery["readyAt"].as_str().expect("readyAt").parse().expect("time");
    assert!(
        ready > chrono::Utc::now() + chrono::Duration::hours(167),
        "a week's wait: {ready}"
    );
    let reused = mutate(
        &app,
        Some(&ada.access_token),
        "startOwnershipRecovery",
        json!({ "token": start_token }),
        "recovery { status }",
    )
    .await;
    assert_eq!(error_code(&reused), "BAD_USER_INPUT", "{reused}");
    assert_eq!(mails(&app, "owner@example.com").await.len(), 2);
    let seen = safety(&app, &owner.access_token).await;
    assert_eq!(seen["pendingRecovery"]["requesterName"], "Rita", "{seen}");
    assert_eq!(seen["recoveryContact"]["email"], "Rescue@Example.com");
    // While it is pending the contact cannot be swapped for another address.
    let body = mutate(
        &app,
        Some(&owner.access_token),
        "setOwnerRecoveryContact",
        set("other@example.com"),
        "recoveryContact { email }",
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // Too early; and nobody else can complete it.
    let complete = |token: String| {
        let app = &app;
        let org = org.clone();
        async move {
            mutate(
                app,
                Some(&token),
                "completeOwnershipRecovery",
                json!({ "organizationId": org }),
                "membership { id }",
            )
            .await
        }
    };
    assert_eq!(error_code(&complete(rita.access_token.clone()).await), "FORBIDDEN");
    assert_eq!(error_code(&complete(ada.access_token.clone()).await), "NOT_FOUND");

    // An owner cancels; the contact is told; there is nothing left to complete.
    let body = mutate(
        &app,
        Some(&ada.access_token),
        "cancelOwnershipRecovery",
        json!({ "organizationId": org }),
        "recovery { status }",
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "an admin is no owner: {body}");
    let body = mutate(
        &app,
        Some(&owner.access_token),
        "cancelOwnershipRecovery",
        json!({ "organizationId": org }),
        "recovery { status }",
    )
    .await;
    assert_eq!(
        body["data"]["cancelOwnershipRecovery"]["recovery"]["status"], "CANCELLED",
        "{body}"
    );
    assert_eq!(mails(&app, "Rescue@Example.com").await.len(), 3);
    assert_eq!(error_code(&complete(rita.access_token.clone()).await), "NOT_FOUND");

    // The day the owner is gone for good: a new request, the week passes, Rita becomes owner.
    app.app.clock.advance(chrono::Duration::minutes(11));
    mutate(
        &app,
        None,
        "requestOwnershipRecovery",
        ask("rescue@example.com"),
        "message",
    )
    .await;
    let sent = mails(&app, "Rescue@Example.com").await;
    assert_eq!(sent.len(), 4);
    let rita_token = app.log_in("rita@example.com").await;
    let started = mutate(
        &app,
        Some(&rita_token),
        "startOwnershipRecovery",
        json!({ "token": token_in(&sent[3]) }),
        "recovery { status }",
    )
    .await;
    assert_eq!(
        started["data"]["startOwnershipRecovery"]["recovery"]["status"], "PENDING",
        "{started}"
    );
    app.app.clock.advance(chrono::Duration::hours(169));
    let rita_token = app.log_in("rita@example.com").await;
    let done = complete(rita_token.clone()).await;
    assert!(
        done["data"]["completeOwnershipRecovery"]["membership"]["id"].is_string(),
        "{done}"
    );
    let owner_token = app.log_in("owner@example.com").await;
    let seen = safety(&app, &owner_token).await;
    assert_eq!(seen["owners"], 2, "{seen}");
    assert!(seen["pendingRecovery"].is_null(), "{seen}");
    assert_eq!(safety(&app, &rita_token).await["owners"], 2, "Rita sees it as an owner");
    let log = app
        .gql(
            Some(&owner_token),
            "{ organization(slug: \"acme\") { auditLog(first: 50) { nodes { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = log["data"]["organization"]["auditLog"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{log}"))
        .iter()
        .map(|n| n["action"].as_str().expect("action"))
        .collect();
    for action in [
        "owner_recovery.contact_set",
        "owner_recovery.contact_confirm",
        "owner_recovery.request",
        "owner_recovery.start",
        "owner_recovery.cancel",
        "owner_recovery.complete",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    app.stop().await;
}
