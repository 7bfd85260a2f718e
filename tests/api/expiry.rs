//! Grants that end: a role binding with `expiresAt` counts for nothing from that instant,
//! without any write or cache expiry, in decisions, lists and `whoCan`; the sweeper then removes
//! it and records `role.expire`. The no-escalation rule and ownership are unchanged by it.
use serde_json::{Value, json};

use crate::helpers::{builtin_role, error_code, spawn_app};

const GRANT: &str = "mutation($i: GrantRoleInput!) { grantRole(input: $i) {
  membership { roleBindings { role { name } expiresAt reason } } } }";

fn in_seconds(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

fn role_names(membership: &Value) -> Vec<String> {
    membership["roleBindings"]
        .as_array()
        .unwrap_or_else(|| panic!("no bindings: {membership}"))
        .iter()
        .map(|b| b["role"]["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn an_ended_grant_counts_for_nothing_from_its_end_and_is_then_swept_and_audited() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let membership = app.add_member(&org, &ana).await;
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            json!({ "i": { "membershipId": membership, "roleId": builtin_role("user_admin"),
                "expiresAt": in_seconds(60), "reason": "  covering for Bea until Friday " } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let binding = &body["data"]["grantRole"]["membership"]["roleBindings"][0];
    assert_eq!(binding["reason"], "covering for Bea until Friday");
    assert!(binding["expiresAt"].is_string(), "{binding}");

    // While it lasts: allowed, with the end shown on the grant, and listed by whoCan.
    let (allowed, why) = app.authorize(&ana, &org, "members.invite", None).await;
    assert!(allowed, "{why}");
    let grants = app
        .gql(
            Some(&ana.access_token),
            "query($o: ID!) { authorize(organizationId: $o, key: \"members.invite\") { grants { expiresAt } } }",
            json!({ "o": org }),
        )
        .await;
    assert!(
        grants["data"]["authorize"]["grants"][0]["expiresAt"].is_string(),
        "{grants}"
    );
    let who = "query($o: ID!) { whoCan(organizationId: $o, key: \"members.invite\") { totalCount } }";
    let holders = app.gql(Some(&owner.access_token), who, json!({ "o": org })).await;
    assert_eq!(holders["data"]["whoCan"]["totalCount"], 2, "{holders}");

    // From its end on, with nothing written in between and the standing kept in memory: denied,
    // gone from the member's bindings and from whoCan.
    let writes_before = app.count_rows("audit_events").await;
    // The service's clock moves past the end (no sleeping, so a slow machine cannot turn the
    // grant's minute into a race).
    app.app.clock.advance(chrono::Duration::seconds(61));
    let (allowed, why) = app.authorize(&ana, &org, "members.invite", None).await;
    assert!(!allowed, "an ended grant still decided: {why}");
    let invite = app
        .gql(
            Some(&ana.access_token),
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { invitation { id } } }",
            json!({ "i": { "organizationId": org, "email": "new@example.com" } }),
        )
        .await;
    assert_eq!(error_code(&invite), "FORBIDDEN", "{invite}");
    let listed = app
        .gql(
            Some(&owner.access_token),
            "query($id: ID!) { node(id: $id) { ... on Membership { roleBindings { role { name } } unassigned } } }",
            json!({ "id": membership }),
        )
        .await;
    assert_eq!(listed["data"]["node"]["roleBindings"], json!([]), "{listed}");
    assert_eq!(listed["data"]["node"]["unassigned"], true);
    let holders = app.gql(Some(&owner.access_token), who, json!({ "o": org })).await;
    assert_eq!(holders["data"]["whoCan"]["totalCount"], 1, "{holders}");
    let filtered = app
        .gql(
            Some(&owner.access_token),
            "query($r: ID!) { organization(slug: \"acme\") {
                holding: members(filter: { roleId: $r }) { totalCount }
                unassigned: members(filter: { unassigned: true }) { totalCount } } }",
            json!({ "r": builtin_role("user_admin") }),
        )
        .await;
    assert_eq!(
        filtered["data"]["organization"]["holding"]["totalCount"], 0,
        "{filtered}"
    );
    assert_eq!(
        filtered["data"]["organization"]["unassigned"]["totalCount"], 1,
        "{filtered}"
    );
    assert_eq!(
        app.count_rows("role_bindings").await,
        2,
        "not yet swept: owner's and Ana's"
    );

    // The sweeper removes it and records why it went.
    let swept = guildhall::domain::bindings::expire_due(&app.app, 500)
        .await
        .expect("sweep");
    assert_eq!(swept, 1);
    assert_eq!(app.count_rows("role_bindings").await, 1);
    assert!(app.count_rows("audit_events").await > writes_before);
    let log = app
        .gql(
            Some(&owner.access_token),
            "query { organization(slug: \"acme\") { auditLog(first: 5, filter: { actions: [\"role.expire\"] }) {
                nodes { action actor { name } details } } } }",
            json!({}),
        )
        .await;
    let events = log["data"]["organization"]["auditLog"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(events.len(), 1, "{log}");
    assert!(events[0]["actor"].is_null(), "the system, not a person: {log}");
    let details = events[0]["details"].to_string();
    assert!(
        details.contains("user_admin") && details.contains("covering for Bea"),
        "{details}"
    );
    assert_eq!(
        guildhall::domain::bindings::expire_due(&app.app, 500)
            .await
            .expect("sweep"),
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn grant_terms_are_checked_and_an_expiring_grant_never_takes_a_lasting_one_away() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let uma = app.sign_up("uma@example.com", "Uma").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let uma_membership = app.add_member(&org, &uma).await;
    let ana_membership = app.add_member(&org, &ana).await;
    let grant = |membership: &str, role: &str, expires: Option<String>, reason: Option<String>| json!({ "i": { "membershipId": membership, "roleId": builtin_role(role), "expiresAt": expires, "reason": reason } });

    for (variables, field) in [
        (
            grant(&ana_membership, "viewer", Some(in_seconds(-60)), None),
            "expiresAt",
        ),
        (
            grant(&ana_membership, "owner", Some(in_seconds(3_600)), None),
            "expiresAt",
        ),
        (grant(&ana_membership, "viewer", None, Some("x".repeat(501))), "reason"),
    ] {
        let body = app.gql(Some(&owner.access_token), GRANT, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(app.count_rows("role_bindings").await, 1, "nothing was written");

    // A lasting `member` stays when a wider `viewer` is granted for an hour, and comes back
    // into play alone when that ends; a lasting grant of `viewer` replaces both.
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&ana_membership, "member", None, None),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&ana_membership, "viewer", Some(in_seconds(3_600)), None),
        )
        .await;
    let mut names = role_names(&body["data"]["grantRole"]["membership"]);
    names.sort();
    assert_eq!(names, ["member", "viewer"], "{body}");
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&ana_membership, "viewer", None, None),
        )
        .await;
    assert_eq!(
        role_names(&body["data"]["grantRole"]["membership"]),
        ["viewer"],
        "{body}"
    );
    // A lasting viewer already covers an expiring one.
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&ana_membership, "viewer", Some(in_seconds(60)), None),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // The giver rule holds for grants that end: a user admin cannot give admin for an hour.
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&uma_membership, "user_admin", None, None),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(
            Some(&uma.access_token),
            GRANT,
            grant(&ana_membership, "admin", Some(in_seconds(3_600)), None),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    app.stop().await;
}

/// A key held only for a time is never given for longer: not by a grant that lasts, not by one
/// that ends later, not to oneself (which would make one's own grant permanent), not by an
/// invitation (an offer becomes a lasting binding).
#[tokio::test]
async fn a_grant_that_ends_cannot_be_made_to_outlast_itself() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&owner, "acme").await;
    let ana_membership = app.add_member(&org, &ana).await;
    let bob_membership = app.add_member(&org, &bob).await;
    let grant = |membership: &str, role: &str, expires: Option<String>| json!({ "i": { "membershipId": membership, "roleId": builtin_role(role), "expiresAt": expires } });
    // Ana administers users for an hour.
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&ana_membership, "user_admin", Some(in_seconds(3_600))),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    let refused = [
        ("her own grant, for good", grant(&ana_membership, "user_admin", None)),
        (
            "her own grant, for a day",
            grant(&ana_membership, "user_admin", Some(in_seconds(86_400))),
        ),
        ("member to Bob, for good", grant(&bob_membership, "member", None)),
        (
            "member to Bob, past her hour",
            grant(&bob_membership, "member", Some(in_seconds(7_200))),
        ),
    ];
    for (what, variables) in refused {
        let body = app.gql(Some(&ana.access_token), GRANT, variables).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{what}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("only for a time"), "{what}: {message}");
    }
    let invite = app
        .gql(
            Some(&ana.access_token),
            "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { invitation { id } } }",
            json!({ "i": { "organizationId": org, "email": "new@example.com",
                "roleBindings": [{ "roleId": builtin_role("member") }] } }),
        )
        .await;
    assert_eq!(error_code(&invite), "FORBIDDEN", "{invite}");
    assert_eq!(app.count_rows("invitations").await, 0);

    // Within her hour she may.
    let body = app
        .gql(
            Some(&ana.access_token),
            GRANT,
            grant(&bob_membership, "member", Some(in_seconds(1_800))),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // Ana's binding still ends when it did, and Bob's inside it.
    let ends = app
        .gql(
            Some(&owner.access_token),
            "query { organization(slug: \"acme\") { members(first: 10) { nodes { user { name } roleBindings { role { name } expiresAt } } } } }",
            json!({}),
        )
        .await;
    let nodes = ends["data"]["organization"]["members"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{ends}"));
    for node in nodes.iter().filter(|n| n["user"]["name"] != "Owner") {
        let bindings = node["roleBindings"].as_array().expect("bindings");
        assert_eq!(bindings.len(), 1, "{node}");
        assert!(bindings[0]["expiresAt"].is_string(), "{node}");
    }
    // An end ten years and more ahead is refused, as is a permanent owner-only gift.
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            grant(&bob_membership, "viewer", Some(in_seconds(3_700 * 86_400))),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    app.stop().await;
}

const INVITE: &str = "mutation($i: InviteMemberInput!) { inviteMember(input: $i) {
  acceptUrl invitation { roleBindings { role { name } expiresAt } } } }";
const ACCEPT: &str = "mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) {
  membership { roleBindings { role { name } expiresAt } } } }";

fn token_of(payload: &Value) -> String {
    payload["acceptUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no link: {payload}"))
        .split_once("token=")
        .expect("token in link")
        .1
        .to_owned()
}

/// An invitation may offer a role for a time: accepted, the binding ends when the offer said;
/// accepted after that end, the offer grants nothing. The viewer sees which keys end and when.
#[tokio::test]
async fn an_offer_that_ends_grants_only_until_its_end_and_the_viewer_sees_when() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let end = in_seconds(3_600);
    let offer = |role: &str, expires: Option<&str>| json!({ "roleId": builtin_role(role), "expiresAt": expires });

    // Terms are checked as for a grant, and nothing is written when they are wrong.
    for (offers, what) in [
        (json!([offer("owner", Some(&end))]), "ownership for a time"),
        (json!([offer("viewer", Some(&in_seconds(-5)))]), "an end in the past"),
        (
            json!([offer("viewer", Some(&end)), offer("viewer", Some(&in_seconds(60)))]),
            "one role with two ends",
        ),
    ] {
        let body = app
            .gql(
                Some(&owner.access_token),
                INVITE,
                json!({ "i": { "organizationId": org, "email": "ana@example.com", "roleBindings": offers } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{what}: {body}");
        let field = body["errors"][0]["extensions"]["field"].as_str().unwrap_or_default();
        assert!(field.starts_with("roleBindings"), "{what}: {body}");
    }
    assert_eq!(app.count_rows("invitations").await, 0);

    let body = app
        .gql(
            Some(&owner.access_token),
            INVITE,
            json!({ "i": { "organizationId": org, "email": "ana@example.com",
                "roleBindings": [offer("member", None), offer("user_admin", Some(&end))] } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let offered = &body["data"]["inviteMember"]["invitation"]["roleBindings"];
    let offered_end = offered
        .as_array()
        .expect("offers")
        .iter()
        .find(|o| o["role"]["name"] == "user_admin")
        .and_then(|o| o["expiresAt"].as_str())
        .unwrap_or_else(|| panic!("the offer shows its end: {offered}"))
        .to_owned();
    let ana_token = token_of(&body["data"]["inviteMember"]);

    let ana = app.sign_up("ana@example.com", "Ana").await;
    let accepted = app
        .gql(Some(&ana.access_token), ACCEPT, json!({ "i": { "token": ana_token } }))
        .await;
    assert!(accepted["errors"].is_null(), "{accepted}");
    let mut bindings: Vec<(String, Value)> = accepted["data"]["acceptInvitation"]["membership"]["roleBindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| {
            (
                b["role"]["name"].as_str().expect("name").to_owned(),
                b["expiresAt"].clone(),
            )
        })
        .collect();
    bindings.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        bindings,
        [
            ("member".to_owned(), Value::Null),
            ("user_admin".to_owned(), json!(offered_end))
        ]
    );

    // What Ana holds, and until when: the user administrator's keys end with the offer, the
    // member's keys last; authorize says the same.
    let held = app
        .gql(
            Some(&ana.access_token),
            "query { organization(slug: \"acme\") { viewerKeys viewerHeldKeys { key until } } }",
            json!({}),
        )
        .await;
    let organization = &held["data"]["organization"];
    let entries = organization["viewerHeldKeys"]
        .as_array()
        .unwrap_or_else(|| panic!("{held}"));
    let keys: Vec<&str> = entries.iter().map(|e| e["key"].as_str().expect("key")).collect();
    let listed: Vec<&str> = organization["viewerKeys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key"))
        .collect();
    assert_eq!(keys, listed, "the same keys in the same order");
    let until = |key: &str| {
        entries
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("{key} not held: {held}"))["until"]
            .clone()
    };
    assert_eq!(until("members.invite"), json!(offered_end), "{held}");
    assert_eq!(until("members.read"), Value::Null, "{held}");
    let decided = app
        .gql(
            Some(&ana.access_token),
            "query($o: ID!) { invite: authorize(organizationId: $o, key: \"members.invite\") { allowed until }
                read: authorize(organizationId: $o, key: \"members.read\") { allowed until } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(
        decided["data"]["invite"],
        json!({ "allowed": true, "until": offered_end }),
        "{decided}"
    );
    assert_eq!(
        decided["data"]["read"],
        json!({ "allowed": true, "until": null }),
        "{decided}"
    );

    // Within her hour Ana may offer her temporary role for part of it, never for good.
    let invite_bea = |expires: Option<String>| {
        json!({ "i": { "organizationId": org, "email": "bea@example.com",
            "roleBindings": [{ "roleId": builtin_role("user_admin"), "expiresAt": expires }] } })
    };
    let forever = app.gql(Some(&ana.access_token), INVITE, invite_bea(None)).await;
    assert_eq!(error_code(&forever), "FORBIDDEN", "{forever}");
    let within = app
        .gql(Some(&ana.access_token), INVITE, invite_bea(Some(in_seconds(1_800))))
        .await;
    assert!(within["errors"].is_null(), "{within}");
    let bea_token = token_of(&within["data"]["inviteMember"]);

    // Two hours on, Bea accepts: her invitation is still open, the offer's half hour is over,
    // so she joins without the role (and Ana's hour has ended too, which no longer matters).
    app.app.clock.advance(chrono::Duration::seconds(7_200));
    let bea = app.sign_up("bea@example.com", "Bea").await;
    let late = app
        .gql(Some(&bea.access_token), ACCEPT, json!({ "i": { "token": bea_token } }))
        .await;
    assert!(late["errors"].is_null(), "{late}");
    assert_eq!(
        late["data"]["acceptInvitation"]["membership"]["roleBindings"],
        json!([]),
        "{late}"
    );
    let ana_again = app.log_in("ana@example.com").await;
    let held = app
        .gql(
            Some(&ana_again),
            "query { organization(slug: \"acme\") { viewerHeldKeys { key until } } }",
            json!({}),
        )
        .await;
    let after: Vec<&Value> = held["data"]["organization"]["viewerHeldKeys"]
        .as_array()
        .expect("keys")
        .iter()
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|e| e["until"].is_null()),
        "{held}"
    );
    assert!(after.iter().all(|e| e["key"] != "members.invite"), "{held}");
    app.stop().await;
}

/// A grant ending while requests that use it are in flight: each request is judged at one
/// instant, so none succeeds on a grant that had ended when it was judged, and every request
/// made after the end is refused — with the caller's standing kept in memory throughout.
#[tokio::test]
async fn a_grant_ending_during_requests_lets_none_through_after_its_end() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let membership = app.add_member(&org, &ana).await;
    let body = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            json!({ "i": { "membershipId": membership, "roleId": builtin_role("user_admin"), "expiresAt": in_seconds(60) } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let end = chrono::Utc::now() + chrono::Duration::seconds(60);
    // Warm Ana's standing so that later requests would find it in memory.
    let (allowed, why) = app.authorize(&ana, &org, "members.invite", None).await;
    assert!(allowed, "{why}");

    const IN_FLIGHT: usize = 20;
    let invite = "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { invitation { createdAt } } }";
    let app_ref = &app;
    let requests = (0..IN_FLIGHT).map(|n| {
        let variables = json!({ "i": { "organizationId": org, "email": format!("guest{n}@example.com") } });
        let token = ana.access_token.clone();
        async move { app_ref.gql(Some(&token), invite, variables).await }
    });
    let advance = async {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        app.app.clock.advance(chrono::Duration::seconds(120));
    };
    let (answers, ()) = tokio::join!(futures_util::future::join_all(requests), advance);

    let mut created = 0;
    for answer in &answers {
        if answer["errors"].is_null() {
            created += 1;
            let at: chrono::DateTime<chrono::Utc> = answer["data"]["inviteMember"]["invitation"]["createdAt"]
                .as_str()
                .expect("createdAt")
                .parse()
                .expect("a time");
            assert!(at < end, "created at {at}, after the grant ended at {end}");
        } else {
            assert_eq!(error_code(answer), "FORBIDDEN", "{answer}");
        }
    }
    assert_eq!(
        app.count_rows("invitations").await,
        created as i64,
        "one row per success"
    );
    // Once the end has passed, every request is refused.
    for n in 0..3 {
        let body = app
            .gql(
                Some(&ana.access_token),
                invite,
                json!({ "i": { "organizationId": org, "email": format!("late{n}@example.com") } }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    assert_eq!(app.count_rows("invitations").await, created as i64);
    app.stop().await;
}

/// The right to grant counts time too: a member holding `member` for good and `user_admin`
/// until Friday holds every key of `member` for good, yet `roles.assign` only until Friday, so
/// she can neither grant `member` for good nor offer it for good in an invitation.
#[tokio::test]
async fn the_right_to_grant_held_for_a_time_grants_nothing_for_longer() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&owner, "acme").await;
    let ana_membership = app.add_member(&org, &ana).await;
    let bob_membership = app.add_member(&org, &bob).await;
    let grant = |membership: &str, role: &str, expires: Option<String>| json!({ "i": { "membershipId": membership, "roleId": builtin_role(role), "expiresAt": expires } });
    for (role, expires) in [("member", None), ("user_admin", Some(in_seconds(3_600)))] {
        let body = app
            .gql(Some(&owner.access_token), GRANT, grant(&ana_membership, role, expires))
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = app
        .gql(Some(&ana.access_token), GRANT, grant(&bob_membership, "member", None))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["key"], "roles.assign", "{body}");
    let invite = app
        .gql(
            Some(&ana.access_token),
            INVITE,
            json!({ "i": { "organizationId": org, "email": "new@example.com",
                "roleBindings": [{ "roleId": builtin_role("member") }] } }),
        )
        .await;
    assert_eq!(error_code(&invite), "FORBIDDEN", "{invite}");
    assert_eq!(app.count_rows("invitations").await, 0);
    // Within her hour, both are hers to do.
    let body = app
        .gql(
            Some(&ana.access_token),
            GRANT,
            grant(&bob_membership, "member", Some(in_seconds(1_800))),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    app.stop().await;
}
