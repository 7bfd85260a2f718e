//! The membership lifecycle over HTTP: invitations, acceptance under races, removal, leaving,
//! ownership transfer and paging through large organizations.
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, builtin_role, error_code, spawn_app};

const INVITE: &str = "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { acceptUrl invitation { id status email expiresAt roleBindings { role { name } workspace { id } } } } }";
const ACCEPT: &str = "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) { membership { id roleBindings { role { name } } } } }";

fn token_of(accept_url: &str) -> String {
    accept_url.split_once("token=").expect("token in link").1.to_owned()
}

async fn invite(app: &TestApp, actor: &TestUser, org: &str, email: &str, roles: Value) -> Value {
    app.gql(
        Some(&actor.access_token),
        INVITE,
        json!({ "input": { "organizationId": org, "email": email, "roleBindings": roles } }),
    )
    .await
}

async fn accept(app: &TestApp, user: &TestUser, token: &str) -> Value {
    app.gql(Some(&user.access_token), ACCEPT, json!({ "input": { "token": token } }))
        .await
}

async fn membership_of(app: &TestApp, user: &TestUser, slug: &str) -> String {
    app.gql(
        Some(&user.access_token),
        &format!("{{ organization(slug: \"{slug}\") {{ viewerMembership {{ id }} }} }}"),
        json!({}),
    )
    .await["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("membership")
        .to_owned()
}

#[tokio::test]
async fn the_invitation_story_with_sign_up_resend_reuse_and_expiry() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    let workspace = app.create_workspace(&ada, &org, "web").await;
    let body = invite(
        &app,
        &ada,
        &org,
        "Grace@Example.com",
        json!([{ "roleId": builtin_role("viewer") }, { "roleId": builtin_role("workspace_admin"), "workspaceId": workspace }]),
    )
    .await;
    let payload = &body["data"]["inviteMember"];
    assert_eq!(payload["invitation"]["status"], "PENDING", "{body}");
    let first_url = payload["acceptUrl"].as_str().expect("url").to_owned();
    assert!(
        first_url.starts_with("https://guildhall.test/invitations/accept?token=ghi_"),
        "{first_url}"
    );
    let invitation_id = payload["invitation"]["id"].as_str().expect("id").to_owned();

    // A second invitation for the same person names the pending one.
    let again = invite(&app, &ada, &org, "grace@example.com", json!([])).await;
    assert_eq!(error_code(&again), "CONFLICT");
    assert_eq!(again["errors"][0]["extensions"]["existingId"], invitation_id.as_str());

    // Resend: a new link; the old one is dead.
    let resent = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: ResendInvitationInput!) { resendInvitation(input: $input) { acceptUrl } }",
            json!({ "input": { "invitationId": invitation_id } }),
        )
        .await;
    let second_url = resent["data"]["resendInvitation"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_ne!(first_url, second_url);
    let signup = "mutation($input: AcceptInvitationWithSignUpInput!) { acceptInvitationWithSignUp(input: $input) {
        auth { accessToken user { email } } membership { roleBindings { role { name } workspace { id } } } } }";
    let old = app
        .gql(
            None,
            signup,
            json!({ "input": { "token": token_of(&first_url), "name": "Grace", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&old), "INVITATION_INVALID", "{old}");
    assert_eq!(app.count_rows("users").await, 1);

    let joined = app
        .gql(
            None,
            signup,
            json!({ "input": { "token": token_of(&second_url), "name": "Grace", "password": PASSWORD } }),
        )
        .await;
    let payload = &joined["data"]["acceptInvitationWithSignUp"];
    assert_eq!(payload["auth"]["user"]["email"], "Grace@Example.com", "{joined}");
    let mut roles: Vec<String> = payload["membership"]["roleBindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| b["role"]["name"].as_str().expect("name").to_owned())
        .collect();
    roles.sort();
    assert_eq!(roles, ["viewer", "workspace_admin"]);
    let grace_token = payload["auth"]["accessToken"].as_str().expect("token").to_owned();
    let seen = app
        .gql(
            Some(&grace_token),
            "{ organization(slug: \"acme\") { name viewerCan(key: \"billing.read\") } }",
            json!({}),
        )
        .await;
    assert_eq!(seen["data"]["organization"]["viewerCan"], true);

    // A used link cannot be used again, whoever presents it.
    let reused = app
        .gql(
            Some(&grace_token),
            ACCEPT,
            json!({ "input": { "token": token_of(&second_url) } }),
        )
        .await;
    assert_eq!(error_code(&reused), "INVITATION_INVALID");
    let status = app
        .gql(
            Some(&ada.access_token),
            "query($id: ID!) { node(id: $id) { ... on Invitation { status } } }",
            json!({ "id": invitation_id }),
        )
        .await;
    assert_eq!(status["data"]["node"]["status"], "ACCEPTED");

    // Expiry: move the clock past 72 hours.
    let late = invite(&app, &ada, &org, "late@example.com", json!([])).await;
    let late_url = late["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let late_id = late["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.app.clock.advance(chrono::Duration::hours(73));
    let expired = app
        .gql(
            None,
            signup,
            json!({ "input": { "token": token_of(&late_url), "name": "Late", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(error_code(&expired), "INVITATION_EXPIRED", "{expired}");
    // Ada's access token ended with the 73 hours too.
    let ada_token = app.log_in(&ada.email).await;
    let listed = app
        .gql(
            Some(&ada_token),
            "{ organization(slug: \"acme\") { expired: invitations(status: EXPIRED) { totalCount nodes { id status } } pending: invitations(status: PENDING) { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["expired"]["nodes"],
        json!([{ "id": late_id, "status": "EXPIRED" }]),
        "{listed}"
    );
    assert_eq!(listed["data"]["organization"]["pending"]["totalCount"], 0);
    app.stop().await;
}

#[tokio::test]
async fn only_the_invited_email_can_accept_in_any_letter_case() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let mallory = app.sign_up("mallory@example.com", "Mallory").await;
    let bob = app.sign_up("BOB@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let body = invite(&app, &ada, &org, "bob@EXAMPLE.com", json!([])).await;
    let token = token_of(body["data"]["inviteMember"]["acceptUrl"].as_str().expect("url"));
    let pending = app
        .gql(
            Some(&bob.access_token),
            "{ viewer { pendingInvitations { email organizationName organization { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        pending["data"]["viewer"]["pendingInvitations"][0]["organizationName"], "Org acme",
        "{pending}"
    );

    let wrong = accept(&app, &mallory, &token).await;
    assert_eq!(error_code(&wrong), "FORBIDDEN", "{wrong}");
    assert_eq!(app.count_rows("memberships").await, 1);
    let right = accept(&app, &bob, &token).await;
    assert_eq!(
        right["data"]["acceptInvitation"]["membership"]["roleBindings"][0]["role"]["name"], "member",
        "{right}"
    );
    assert_eq!(app.count_rows("memberships").await, 2);
    // Existing members cannot be invited again.
    let again = invite(&app, &ada, &org, "bob@example.com", json!([])).await;
    assert_eq!(error_code(&again), "CONFLICT");
    app.stop().await;
}

#[tokio::test]
async fn invitations_cannot_offer_more_than_the_inviter_may_grant() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let cy = app.sign_up("cy@example.com", "Cy").await;
    let org = app.create_organization(&ada, "acme").await;
    let cy_membership = app.add_member(&org, &cy).await;
    assert!(
        app.change_role(&ada, true, &cy_membership, &builtin_role("user_admin"), None)
            .await["errors"]
            .is_null()
    );
    let body = invite(
        &app,
        &cy,
        &org,
        "new@example.com",
        json!([{ "roleId": builtin_role("admin") }]),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = invite(
        &app,
        &cy,
        &org,
        "new@example.com",
        json!([{ "roleId": builtin_role("member") }]),
    )
    .await;
    let token = token_of(body["data"]["inviteMember"]["acceptUrl"].as_str().expect("url"));
    // Cy loses the right to grant before the invitation is accepted: acceptance re-checks.
    assert!(
        app.change_role(&ada, false, &cy_membership, &builtin_role("user_admin"), None)
            .await["errors"]
            .is_null()
    );
    let newcomer = app.sign_up("new@example.com", "New").await;
    let refused = accept(&app, &newcomer, &token).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(app.count_rows("memberships").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_accepts_make_exactly_one_membership() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let body = invite(&app, &ada, &org, "bob@example.com", json!([])).await;
    let token = token_of(body["data"]["inviteMember"]["acceptUrl"].as_str().expect("url"));
    let attempts = (0..50).map(|_| accept(&app, &bob, &token));
    let results = futures_util::future::join_all(attempts).await;
    let successes = results.iter().filter(|r| r["errors"].is_null()).count();
    assert_eq!(successes, 1);
    for failure in results.iter().filter(|r| !r["errors"].is_null()) {
        let code = error_code(failure);
        assert!(code == "INVITATION_INVALID" || code == "CONFLICT", "{failure}");
    }
    assert_eq!(app.count_rows("memberships").await, 2);
    assert_eq!(app.count_rows("role_bindings").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_accept_and_revoke_never_both_succeed() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.sign_up(&format!("u{i}@example.com"), "U").await);
    }
    let revoke =
        "mutation($input: RevokeInvitationInput!) { revokeInvitation(input: $input) { invitation { status } } }";
    for user in &users {
        let body = invite(&app, &ada, &org, &user.email, json!([])).await;
        let token = token_of(body["data"]["inviteMember"]["acceptUrl"].as_str().expect("url"));
        let id = body["data"]["inviteMember"]["invitation"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let (accepted, revoked) = tokio::join!(
            accept(&app, user, &token),
            app.gql(
                Some(&ada.access_token),
                revoke,
                json!({ "input": { "invitationId": id } })
            ),
        );
        let wins = [accepted["errors"].is_null(), revoked["errors"].is_null()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{accepted} {revoked}");
        let status = app
            .gql(
                Some(&ada.access_token),
                "query($id: ID!) { node(id: $id) { ... on Invitation { status } } }",
                json!({ "id": id }),
            )
            .await["data"]["node"]["status"]
            .clone();
        assert_eq!(status, if wins[0] { "ACCEPTED" } else { "REVOKED" });
    }
    app.stop().await;
}

#[tokio::test]
async fn fifty_rounds_of_owners_demoting_and_removing_each_other_never_leave_zero_owners() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org = app.create_organization(&ada, "acme").await;
    let owner = builtin_role("owner");
    let remove = "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { removedMembershipId } }";
    for round in 0..50 {
        // Both are owners at the start of every round.
        let ada_membership = membership_of(&app, &ada, "acme").await;
        let bob_membership = match app
            .gql(
                Some(&bob.access_token),
                "{ organization(slug: \"acme\") { viewerMembership { id } } }",
                json!({}),
            )
            .await["data"]["organization"]["viewerMembership"]["id"]
            .as_str()
        {
            Some(id) => id.to_owned(),
            None => app.add_member(&org, &bob).await,
        };
        for (granter, membership) in [(&ada, &bob_membership), (&bob, &ada_membership)] {
            let _ = app.change_role(granter, true, membership, &owner, None).await;
        }
        let (a, b) = if round % 2 == 0 {
            tokio::join!(
                app.change_role(&ada, false, &bob_membership, &owner, None),
                app.change_role(&bob, false, &ada_membership, &owner, None),
            )
        } else {
            tokio::join!(
                app.gql(
                    Some(&ada.access_token),
                    remove,
                    json!({ "input": { "membershipId": bob_membership } })
                ),
                app.gql(
                    Some(&bob.access_token),
                    remove,
                    json!({ "input": { "membershipId": ada_membership } })
                ),
            )
        };
        assert_eq!(
            [&a, &b].iter().filter(|r| r["errors"].is_null()).count(),
            1,
            "round {round}: {a} {b}"
        );
        let store = app.store().await;
        let owners = guildhall::domain::bindings::holders(
            &store.conn,
            crate::helpers::raw_id(&org),
            &[guildhall::domain::builtins::role_id("owner")],
            chrono::Utc::now(),
            guildhall::domain::bindings::Through::Own,
        )
        .await
        .expect("owners");
        store.close().await;
        assert_eq!(owners.len(), 1, "round {round}");
        if !a["errors"].is_null() && round % 2 == 1 {
            // Bob removed Ada: swap back so the next round starts from the same place.
            let membership = app.add_member(&org, &ada).await;
            let _ = app.change_role(&bob, true, &membership, &owner, None).await;
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn removal_leaving_and_transfer() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let cy = app.sign_up("cy@example.com", "Cy").await;
    let org = app.create_organization(&ada, "acme").await;
    let bob_membership = app.add_member(&org, &bob).await;
    let cy_membership = app.add_member(&org, &cy).await;
    assert!(
        app.change_role(&ada, true, &bob_membership, &builtin_role("user_admin"), None)
            .await["errors"]
            .is_null()
    );
    assert!(
        app.change_role(&ada, true, &cy_membership, &builtin_role("viewer"), None)
            .await["errors"]
            .is_null()
    );
    let remove = "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { removedMembershipId } }";
    // A user_admin cannot remove a viewer: the viewer holds keys the user_admin lacks.
    let body = app
        .gql(
            Some(&bob.access_token),
            remove,
            json!({ "input": { "membershipId": cy_membership } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // The owner can; Cy's next request for the organization finds nothing.
    let body = app
        .gql(
            Some(&ada.access_token),
            remove,
            json!({ "input": { "membershipId": cy_membership } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let gone = app
        .gql(
            Some(&cy.access_token),
            "query($id: ID!) { organization(slug: \"acme\") { id } node(id: $id) { id } }",
            json!({ "id": org }),
        )
        .await;
    assert!(
        gone["data"]["organization"].is_null() && gone["data"]["node"].is_null(),
        "{gone}"
    );
    let (status, body, _) = app
        .gql_response(
            Some(&cy.access_token),
            "query($o: ID!) { authorize(organizationId: $o, key: \"members.read\") { allowed } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!((status, error_code(&body).as_str()), (200, "NOT_FOUND"));

    // The last owner can neither leave nor be removed.
    let leave = "mutation($input: LeaveOrganizationInput!) { leaveOrganization(input: $input) { leftOrganizationId } }";
    let body = app
        .gql(
            Some(&ada.access_token),
            leave,
            json!({ "input": { "organizationId": org } }),
        )
        .await;
    assert_eq!(error_code(&body), "LAST_OWNER");
    // Transfer with step-down makes Bob the only owner.
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: TransferOwnershipInput!) { transferOwnership(input: $input) { membership { roleBindings { role { name } } } } }",
            json!({ "input": { "organizationId": org, "toMembershipId": bob_membership, "stepDown": true } }),
        )
        .await;
    let roles = &body["data"]["transferOwnership"]["membership"]["roleBindings"];
    assert_eq!(roles, &json!([{ "role": { "name": "owner" } }]), "{body}");
    assert!(!app.authorize(&ada, &org, "organization.delete", None).await.0);
    assert!(app.authorize(&bob, &org, "organization.delete", None).await.0);
    // Ada may now leave; Bob, the last owner, may not.
    let body = app
        .gql(
            Some(&ada.access_token),
            leave,
            json!({ "input": { "organizationId": org } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let body = app
        .gql(
            Some(&bob.access_token),
            leave,
            json!({ "input": { "organizationId": org } }),
        )
        .await;
    assert_eq!(error_code(&body), "LAST_OWNER");
    app.stop().await;
}

#[tokio::test]
async fn invitation_tokens_are_stored_hashed_and_mail_is_queued() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    let body = invite(&app, &ada, &org, "bob@example.com", json!([])).await;
    let url = body["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let id = body["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resent = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: ResendInvitationInput!) { resendInvitation(input: $input) { acceptUrl } }",
            json!({ "input": { "invitationId": id } }),
        )
        .await;
    let second = resent["data"]["resendInvitation"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let store = app.store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(store.backend(), "SELECT token_hash FROM invitations"),
    )
    .await
    .expect("rows");
    assert_eq!(rows.len(), 1);
    let hash: String = rows[0].try_get("", "token_hash").expect("hash");
    for link in [&url, &second] {
        let token = token_of(link);
        assert!(!hash.contains(&token) && !token.contains(&hash));
    }
    assert_eq!(hash, guildhall::domain::secrets::digest(&token_of(&second)));
    let outbox = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            "SELECT kind, recipient, body FROM mail_outbox ORDER BY id",
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    let kinds: Vec<String> = outbox.iter().map(|r| r.try_get("", "kind").expect("kind")).collect();
    assert_eq!(kinds, ["invitation", "invitation_resend"]);
    let body: String = outbox[1].try_get("", "body").expect("body");
    assert!(body.contains(&second) && !body.contains(&token_of(&url)));
    assert!(!body.to_lowercase().contains("password"));
    app.stop().await;
}

#[tokio::test]
async fn ten_thousand_members_page_exactly_once_in_a_stable_order() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "big").await;
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { plan } } }",
            json!({ "input": { "organizationId": org, "plan": "ENTERPRISE" } }),
        )
        .await;
    assert_eq!(body["data"]["updateOrganization"]["organization"]["plan"], "ENTERPRISE");
    crate::helpers::bulk_members(&app, &org, 10_000).await;
    let query = "query($after: String) { organization(slug: \"big\") { members(first: 100, after: $after) {
        totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }";
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let body = app.gql(Some(&ada.access_token), query, json!({ "after": after })).await;
        let members = &body["data"]["organization"]["members"];
        assert_eq!(members["totalCount"], 10_001, "{body}");
        for edge in members["edges"].as_array().expect("edges") {
            seen.push(edge["node"]["id"].as_str().expect("id").to_owned());
        }
        pages += 1;
        if members["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = members["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, 101);
    assert_eq!(seen.len(), 10_001);
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 10_001, "every member exactly once");
    // Stable: the same page twice gives the same members.
    let page = |after: Option<String>| app.gql(Some(&ada.access_token), query, json!({ "after": after }));
    let first = page(None).await;
    let again = page(None).await;
    assert_eq!(
        first["data"]["organization"]["members"]["edges"],
        again["data"]["organization"]["members"]["edges"]
    );
    // Filters: text, unassigned, role.
    let filtered = app
        .gql(
            Some(&ada.access_token),
            "query($role: ID!) { organization(slug: \"big\") {
                text: members(filter: { query: \"MEMBER-0042\" }) { totalCount }
                unassigned: members(filter: { unassigned: true }) { totalCount }
                owners: members(filter: { roleId: $role }) { totalCount nodes { user { email } } } } }",
            json!({ "role": builtin_role("owner") }),
        )
        .await;
    let o = &filtered["data"]["organization"];
    assert_eq!(o["text"]["totalCount"], 10, "{filtered}");
    assert_eq!(o["unassigned"]["totalCount"], 10_000);
    assert_eq!(o["owners"]["nodes"][0]["user"]["email"], "ada@example.com");
    app.stop().await;
}

#[tokio::test]
async fn invitees_can_decline_and_members_filter_by_workspace() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let cy = app.sign_up("cy@example.com", "Cy").await;
    let org = app.create_organization(&ada, "acme").await;
    let body = invite(&app, &ada, &org, "bob@example.com", json!([])).await;
    let id = body["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let token = token_of(body["data"]["inviteMember"]["acceptUrl"].as_str().expect("url"));
    let decline =
        "mutation($input: DeclineInvitationInput!) { declineInvitation(input: $input) { invitation { status } } }";
    // Only the addressee may decline; to anyone else it does not exist.
    let body = app
        .gql(
            Some(&cy.access_token),
            decline,
            json!({ "input": { "invitationId": id } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let body = app
        .gql(
            Some(&bob.access_token),
            decline,
            json!({ "input": { "invitationId": id } }),
        )
        .await;
    assert_eq!(
        body["data"]["declineInvitation"]["invitation"]["status"], "DECLINED",
        "{body}"
    );
    assert_eq!(error_code(&accept(&app, &bob, &token).await), "INVITATION_INVALID");
    let pending = app
        .gql(
            Some(&bob.access_token),
            "{ viewer { pendingInvitations { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(pending["data"]["viewer"]["pendingInvitations"], json!([]));

    let workspace = app.create_workspace(&ada, &org, "web").await;
    let cy_membership = app.add_member(&org, &cy).await;
    assert!(
        app.change_role(
            &ada,
            true,
            &cy_membership,
            &builtin_role("workspace_viewer"),
            Some(&workspace)
        )
        .await["errors"]
            .is_null()
    );
    let filtered = app
        .gql(
            Some(&ada.access_token),
            "query($w: ID!) { organization(slug: \"acme\") { members(filter: { workspaceId: $w }) { nodes { id } } } }",
            json!({ "w": workspace }),
        )
        .await;
    assert_eq!(
        filtered["data"]["organization"]["members"]["nodes"],
        json!([{ "id": cy_membership }]),
        "{filtered}"
    );
    app.stop().await;
}
