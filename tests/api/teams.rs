//! Teams: a member's keys are the union of their own bindings' and their teams'; every rule of
//! personal grants holds for team grants (who may grant, owners-only roles, the admin limit),
//! ownership stays personal, and concurrent edits of a team while a member is removed leave
//! nothing behind.
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_role, error_code, spawn_app};

const CREATE: &str = "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id name } } }";
const ADD: &str = "mutation($i: AddTeamMemberInput!) { addTeamMember(input: $i) { team { memberCount } } }";
const REMOVE: &str = "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) { team { memberCount } } }";
const GRANT: &str = "mutation($i: GrantTeamRoleInput!) { grantTeamRole(input: $i) {
  team { roleBindings { role { name } workspace { id } expiresAt team { name } } } } }";
const REVOKE: &str = "mutation($i: RevokeTeamRoleInput!) { revokeTeamRole(input: $i) { team { id } } }";

async fn create_team(app: &TestApp, user: &TestUser, org: &str, name: &str) -> String {
    let body = app
        .gql(
            Some(&user.access_token),
            CREATE,
            json!({ "i": { "organizationId": org, "name": name, "description": "ship it" } }),
        )
        .await;
    body["data"]["createTeam"]["team"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("create team failed: {body}"))
        .to_owned()
}

async fn add(app: &TestApp, user: &TestUser, team: &str, membership: &str) -> Value {
    app.gql(
        Some(&user.access_token),
        ADD,
        json!({ "i": { "teamId": team, "membershipId": membership } }),
    )
    .await
}

async fn grant(app: &TestApp, user: &TestUser, team: &str, role: &str, workspace: Option<&str>) -> Value {
    app.gql(
        Some(&user.access_token),
        GRANT,
        json!({ "i": { "teamId": team, "roleId": role, "workspaceId": workspace } }),
    )
    .await
}

fn ok(body: &Value) {
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn a_members_keys_are_their_own_and_their_teams_everywhere_they_are_read() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let staging = app.create_workspace(&owner, &org, "staging").await;
    let production = app.create_workspace(&owner, &org, "production").await;
    let ana_m = app.add_member(&org, &ana).await;
    ok(&app
        .change_role(&owner, true, &ana_m, &builtin_role("member"), None)
        .await);
    let team = create_team(&app, &owner, &org, "Deployers").await;

    // A second team of the same name, whatever its case, is a conflict.
    let twin = app
        .gql(
            Some(&owner.access_token),
            CREATE,
            json!({ "i": { "organizationId": org, "name": "deployers" } }),
        )
        .await;
    assert_eq!(error_code(&twin), "CONFLICT", "{twin}");

    let granted = grant(&app, &owner, &team, &builtin_role("workspace_admin"), Some(&staging)).await;
    ok(&granted);
    assert_eq!(
        granted["data"]["grantTeamRole"]["team"]["roleBindings"][0]["team"]["name"],
        "Deployers"
    );
    // Before joining: nothing through the team.
    let (allowed, _) = app.authorize(&ana, &org, "servers.power", Some(&staging)).await;
    assert!(!allowed);
    let joined = add(&app, &owner, &team, &ana_m).await;
    ok(&joined);
    assert_eq!(joined["data"]["addTeamMember"]["team"]["memberCount"], 1);
    let again = add(&app, &owner, &team, &ana_m).await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");

    // Decisions: in the team's workspace only, explained through the team.
    let (allowed, why) = app.authorize(&ana, &org, "servers.power", Some(&staging)).await;
    assert!(allowed, "{why}");
    let (allowed, _) = app.authorize(&ana, &org, "servers.power", Some(&production)).await;
    assert!(!allowed);
    let explained = app
        .gql(
            Some(&ana.access_token),
            "query($o: ID!, $w: ID) { authorize(organizationId: $o, key: \"servers.power\", workspaceId: $w) {
               grants { team { name } roleBinding { team { name } role { name } } } } }",
            json!({ "o": org, "w": staging }),
        )
        .await;
    let grants = &explained["data"]["authorize"]["grants"];
    assert_eq!(grants[0]["team"]["name"], "Deployers", "{explained}");
    assert_eq!(grants[0]["roleBinding"]["role"]["name"], "workspace_admin");
    // A member's keys as others read them, their teams and the team's members.
    let read = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!, $t: ID!, $w: ID) { node(id: $o) { ... on Organization {
               members(filter: { teamId: $t }) { totalCount nodes { id unassigned effectiveKeys(workspaceId: $w) teams { name } roleBindings { role { name } } } }
               teams { totalCount nodes { name memberCount members { nodes { id } } } }
               limits { teams { used limit } } } } }",
            json!({ "o": org, "t": team, "w": staging }),
        )
        .await;
    ok(&read);
    let organization = &read["data"]["node"];
    assert_eq!(organization["members"]["totalCount"], 1, "{read}");
    let member = &organization["members"]["nodes"][0];
    assert_eq!(member["id"], ana_m.as_str());
    assert_eq!(member["teams"][0]["name"], "Deployers");
    assert!(
        member["effectiveKeys"]
            .as_array()
            .expect("keys")
            .contains(&json!("servers.power")),
        "{member}"
    );
    // Her own bindings stay her own.
    assert_eq!(member["roleBindings"].as_array().expect("bindings").len(), 1);
    assert_eq!(organization["teams"]["totalCount"], 1);
    assert_eq!(
        organization["teams"]["nodes"][0]["members"]["nodes"][0]["id"],
        ana_m.as_str()
    );
    assert_eq!(organization["limits"]["teams"]["used"], 1);
    // The workspace filter and whoCan count her through the team, and name the team.
    let who = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!, $w: ID) { whoCan(organizationId: $o, key: \"servers.power\", workspaceId: $w) {
               totalCount nodes { membership { id } grants { team { name } } }
               teams { team { name } grants { role { name } workspace { id } } } } }",
            json!({ "o": org, "w": staging }),
        )
        .await;
    ok(&who);
    let who = &who["data"]["whoCan"];
    assert_eq!(who["totalCount"], 2, "owner and Ana: {who}");
    let ana_holder = who["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["membership"]["id"] == ana_m.as_str())
        .unwrap_or_else(|| panic!("Ana missing: {who}"));
    assert_eq!(ana_holder["grants"][0]["team"]["name"], "Deployers");
    assert_eq!(who["teams"][0]["team"]["name"], "Deployers");
    assert_eq!(who["teams"][0]["grants"][0]["workspace"]["id"], staging.as_str());
    let elsewhere = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!, $w: ID) { whoCan(organizationId: $o, key: \"servers.power\", workspaceId: $w) { totalCount teams { team { name } } } }",
            json!({ "o": org, "w": production }),
        )
        .await;
    assert_eq!(elsewhere["data"]["whoCan"]["totalCount"], 1, "{elsewhere}");
    assert_eq!(elsewhere["data"]["whoCan"]["teams"], json!([]));

    // Leaving the team takes the keys away at once (the kept standing follows the write).
    ok(&app
        .gql(
            Some(&ana.access_token),
            REMOVE,
            json!({ "i": { "teamId": team, "membershipId": ana_m } }),
        )
        .await);
    let (allowed, _) = app.authorize(&ana, &org, "servers.power", Some(&staging)).await;
    assert!(!allowed, "a member who left still holds the team's keys");
    // Revoking the team's role and deleting the team are audited with the rest.
    ok(&app
        .gql(
            Some(&owner.access_token),
            REVOKE,
            json!({ "i": { "teamId": team, "roleId": builtin_role("workspace_admin"), "workspaceId": staging } }),
        )
        .await);
    let deleted = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: DeleteTeamInput!) { deleteTeam(input: $i) { deletedTeamId } }",
            json!({ "i": { "teamId": team } }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteTeam"]["deletedTeamId"],
        team.as_str(),
        "{deleted}"
    );
    let audit = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { auditLog(first: 50) { nodes { action } } } } }",
            json!({ "o": org }),
        )
        .await;
    let actions: Vec<&str> = audit["data"]["node"]["auditLog"]["nodes"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "team.create",
        "team.role.grant",
        "team.member.add",
        "team.member.remove",
        "team.role.revoke",
        "team.delete",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn team_grants_follow_the_grant_rule_and_never_cross_organizations() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let bea = app.sign_up("bea@example.com", "Bea").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let staging = app.create_workspace(&owner, &org, "staging").await;
    let bea_m = app.add_member(&org, &bea).await;
    let ana_m = app.add_member(&org, &ana).await;
    // Bea manages people (teams.manage, roles.assign) but holds no server key.
    ok(&app
        .change_role(&owner, true, &bea_m, &builtin_role("user_admin"), None)
        .await);
    ok(&app
        .change_role(&owner, true, &ana_m, &builtin_role("member"), None)
        .await);

    // A plain member cannot create teams.
    let refused = app
        .gql(
            Some(&ana.access_token),
            CREATE,
            json!({ "i": { "organizationId": org, "name": "mine" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    let deployers = create_team(&app, &bea, &org, "deployers").await;
    // Bea cannot bind a role whose keys she lacks to her team...
    let refused = grant(&app, &bea, &deployers, &builtin_role("workspace_admin"), Some(&staging)).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    // ...nor join (or add anyone to) a team the owner gave those keys: joining is being granted.
    ok(&grant(
        &app,
        &owner,
        &deployers,
        &builtin_role("workspace_admin"),
        Some(&staging),
    )
    .await);
    for who in [&bea_m, &ana_m] {
        let refused = add(&app, &bea, &deployers, who).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    }
    let (allowed, _) = app.authorize(&bea, &org, "servers.power", Some(&staging)).await;
    assert!(!allowed, "Bea escalated through a team");
    // ...nor take a member out of it or delete it (that revokes keys she lacks); the member may
    // always leave.
    ok(&add(&app, &owner, &deployers, &ana_m).await);
    let refused = app
        .gql(
            Some(&bea.access_token),
            REMOVE,
            json!({ "i": { "teamId": deployers, "membershipId": ana_m } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let refused = app
        .gql(
            Some(&bea.access_token),
            "mutation($i: DeleteTeamInput!) { deleteTeam(input: $i) { deletedTeamId } }",
            json!({ "i": { "teamId": deployers } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    // Owner-granted roles reach a team from owners only; `owner` never does.
    let admins = create_team(&app, &owner, &org, "admins").await;
    let refused = grant(&app, &bea, &admins, &builtin_role("admin"), None).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let refused = grant(&app, &owner, &admins, &builtin_role("owner"), None).await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    ok(&grant(&app, &owner, &admins, &builtin_role("admin"), None).await);
    // An admin team is joined through owners only, the user admin included.
    let refused = add(&app, &bea, &admins, &bea_m).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    // Nothing of another organization: its members, roles and workspaces are not found, and a
    // team of this one is invisible to its owner.
    let mallory = app.sign_up("mallory@example.com", "Mallory").await;
    let other = app.create_organization(&mallory, "other").await;
    let other_ws = app.create_workspace(&mallory, &other, "ops").await;
    let mallory_team = create_team(&app, &mallory, &other, "raiders").await;
    let refused = add(&app, &owner, &deployers, &app.add_member(&other, &ana).await).await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    let refused = add(&app, &mallory, &mallory_team, &bea_m).await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    let refused = add(&app, &mallory, &deployers, &bea_m).await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    let refused = grant(
        &app,
        &mallory,
        &mallory_team,
        &builtin_role("workspace_admin"),
        Some(&staging),
    )
    .await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    let refused = grant(
        &app,
        &owner,
        &deployers,
        &builtin_role("workspace_admin"),
        Some(&other_ws),
    )
    .await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    let seen = app
        .gql(
            Some(&mallory.access_token),
            "query($t: ID!) { node(id: $t) { id } }",
            json!({ "t": deployers }),
        )
        .await;
    assert!(seen["data"]["node"].is_null(), "{seen}");
    // A malformed id is bad input; an id of another type is not found.
    let bad = add(&app, &owner, "nope", &ana_m).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    let wrong = add(&app, &owner, &org, &ana_m).await;
    assert_eq!(error_code(&wrong), "NOT_FOUND", "{wrong}");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_limit_counts_people_who_are_admins_through_a_team_and_ownership_stays_personal() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let owner_m = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { viewerMembership { id } } } }",
            json!({ "o": org }),
        )
        .await["data"]["node"]["viewerMembership"]["id"]
        .as_str()
        .expect("owner membership")
        .to_owned();
    let mut members = Vec::new();
    for n in 0..3 {
        let user = app.sign_up(&format!("m{n}@example.com"), "M").await;
        members.push(app.add_member(&org, &user).await);
    }
    // FREE allows 3 admins: the owner and two people through the team.
    let team = create_team(&app, &owner, &org, "admins").await;
    ok(&grant(&app, &owner, &team, &builtin_role("admin"), None).await);
    ok(&add(&app, &owner, &team, &members[0]).await);
    ok(&add(&app, &owner, &team, &members[1]).await);
    let refused = add(&app, &owner, &team, &members[2]).await;
    assert_eq!(error_code(&refused), "LIMIT_EXCEEDED", "{refused}");
    // A personal grant is refused too: the team's admins are counted.
    let refused = app
        .change_role(&owner, true, &members[2], &builtin_role("admin"), None)
        .await;
    assert_eq!(error_code(&refused), "LIMIT_EXCEEDED", "{refused}");
    // Binding an admin role to a second team whose members would exceed the limit is refused.
    let second = create_team(&app, &owner, &org, "more admins").await;
    ok(&add(&app, &owner, &second, &members[2]).await);
    let refused = grant(&app, &owner, &second, &builtin_role("admin"), None).await;
    assert_eq!(error_code(&refused), "LIMIT_EXCEEDED", "{refused}");
    let limits = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { limits { admins { used limit } } } } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(limits["data"]["node"]["limits"]["admins"]["used"], 3, "{limits}");
    assert_eq!(app.count_rows("team_members").await, 3);

    // The one owner cannot step away because admins exist through a team: ownership is personal.
    let refused = app
        .change_role(&owner, false, &owner_m, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&refused), "LAST_OWNER", "{refused}");
    // An owner in the team changes nothing about it either (the team holds no `owner`).
    ok(&add(&app, &owner, &team, &owner_m).await);
    let refused = app
        .change_role(&owner, false, &owner_m, &builtin_role("owner"), None)
        .await;
    assert_eq!(error_code(&refused), "LAST_OWNER", "{refused}");

    // The plan's team limit: FREE allows 5.
    for n in 0..3 {
        create_team(&app, &owner, &org, &format!("t{n}")).await;
    }
    let refused = app
        .gql(
            Some(&owner.access_token),
            CREATE,
            json!({ "i": { "organizationId": org, "name": "one too many" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "LIMIT_EXCEEDED", "{refused}");
    app.stop().await;
}

#[tokio::test]
async fn a_team_grant_that_ends_counts_for_nothing_from_its_end_and_is_swept() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let ana_m = app.add_member(&org, &ana).await;
    let team = create_team(&app, &owner, &org, "cover").await;
    ok(&add(&app, &owner, &team, &ana_m).await);
    let ends = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339();
    let granted = app
        .gql(
            Some(&owner.access_token),
            GRANT,
            json!({ "i": { "teamId": team, "roleId": builtin_role("user_admin"), "expiresAt": ends, "reason": "cover" } }),
        )
        .await;
    ok(&granted);
    let (allowed, _) = app.authorize(&ana, &org, "members.invite", None).await;
    assert!(allowed);
    let held = app
        .gql(
            Some(&ana.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { viewerHeldKeys { key until } } } }",
            json!({ "o": org }),
        )
        .await;
    let invite = held["data"]["node"]["viewerHeldKeys"]
        .as_array()
        .expect("held")
        .iter()
        .find(|k| k["key"] == "members.invite")
        .cloned()
        .unwrap_or_else(|| panic!("{held}"));
    assert!(invite["until"].is_string(), "{invite}");
    app.app.clock.advance(chrono::Duration::seconds(61));
    let (allowed, _) = app.authorize(&ana, &org, "members.invite", None).await;
    assert!(!allowed, "an ended team grant still decided");
    let swept = guildhall::domain::teams::expire_due(&app.app, 500)
        .await
        .expect("sweep");
    assert_eq!(swept, 1);
    assert_eq!(app.count_rows("team_role_bindings").await, 0);
    let audit = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { auditLog(first: 5) { nodes { action targetType } } } } }",
            json!({ "o": org }),
        )
        .await;
    let newest = &audit["data"]["node"]["auditLog"]["nodes"][0];
    assert_eq!(newest["action"], "role.expire", "{audit}");
    assert_eq!(newest["targetType"], "Team", "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn two_admins_editing_a_team_while_its_members_are_removed_leave_nothing_behind() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let second = app.sign_up("second@example.com", "Second").await;
    let org = app.create_organization(&owner, "acme").await;
    let second_m = app.add_member(&org, &second).await;
    ok(&app
        .change_role(&owner, true, &second_m, &builtin_role("owner"), None)
        .await);
    let staging = app.create_workspace(&owner, &org, "staging").await;
    let team = create_team(&app, &owner, &org, "deployers").await;
    let mut members = Vec::new();
    for n in 0..6 {
        let user = app.sign_up(&format!("m{n}@example.com"), "M").await;
        members.push((app.add_member(&org, &user).await, user));
    }
    // Per member, at once: one admin adds them to the team, the other changes the team's
    // roles, and the owner removes them from the organization.
    let roles: Vec<String> = (0..members.len())
        .map(|n| {
            builtin_role(if n % 2 == 0 {
                "workspace_viewer"
            } else {
                "workspace_admin"
            })
        })
        .collect();
    let mut requests = Vec::new();
    for ((membership, _), role) in members.iter().zip(&roles) {
        requests.push(add(&app, &second, &team, membership).boxed_local());
        requests.push(grant(&app, &owner, &team, role, Some(&staging)).boxed_local());
        requests.push(
            app.gql(
                Some(&owner.access_token),
                "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { removedMembershipId } }",
                json!({ "i": { "membershipId": membership } }),
            )
            .boxed_local(),
        );
    }
    let answers = futures_util::future::join_all(requests).await;
    for answer in &answers {
        if !answer["errors"].is_null() {
            let code = error_code(answer);
            assert!(
                ["NOT_FOUND", "CONFLICT"].contains(&code.as_str()),
                "a race answered {code}: {answer}"
            );
        }
    }
    // Every member was removed; none is left in the team, and nobody holds its keys.
    assert_eq!(app.count_rows("team_members").await, 0);
    let team_read = app
        .gql(
            Some(&owner.access_token),
            "query($t: ID!) { node(id: $t) { ... on Team { memberCount roleBindings { role { name } } } } }",
            json!({ "t": team }),
        )
        .await;
    assert_eq!(team_read["data"]["node"]["memberCount"], 0, "{team_read}");
    // Subsumption held under the race: workspace_admin covers workspace_viewer, so at most one
    // binding per scope survives.
    let bindings = team_read["data"]["node"]["roleBindings"].as_array().expect("bindings");
    assert_eq!(bindings.len(), 1, "{team_read}");
    for (_, user) in &members {
        let body = app
            .gql(
                Some(&user.access_token),
                "{ viewer { organizations { totalCount } } }",
                json!({}),
            )
            .await;
        assert_eq!(body["data"]["viewer"]["organizations"]["totalCount"], 0, "{body}");
    }
    app.stop().await;
}

use futures_util::FutureExt;

async fn roles_document(app: &TestApp, user: &TestUser, org: &str) -> String {
    let body = app
        .gql(
            Some(&user.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { rolesDocument(format: YAML) } } }",
            json!({ "o": org }),
        )
        .await;
    body["data"]["node"]["rolesDocument"]
        .as_str()
        .unwrap_or_else(|| panic!("export failed: {body}"))
        .to_owned()
}

async fn import(app: &TestApp, user: &TestUser, org: &str, document: &str, mode: &str) -> Value {
    app.gql(
        Some(&user.access_token),
        "mutation($i: ImportRolesInput!) { importRoles(input: $i) {
           created { kind name } updated { kind name } deleted { kind name } unchanged { kind name } } }",
        json!({ "i": { "organizationId": org, "document": document, "format": "YAML", "mode": mode } }),
    )
    .await
}

fn named(report: &Value, list: &str, kind: &str, name: &str) -> bool {
    report["data"]["importRoles"][list]
        .as_array()
        .is_some_and(|items| items.iter().any(|i| i["kind"] == kind && i["name"] == name))
}

#[tokio::test]
async fn teams_travel_in_the_roles_document_and_an_import_sets_them_exactly() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let source = app.create_organization(&owner, "source").await;
    let target = app.create_organization(&owner, "target").await;
    for org in [&source, &target] {
        app.create_workspace(&owner, org, "staging").await;
    }
    let source_staging = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!) { node(id: $o) { ... on Organization { workspaces { nodes { id } } } } }",
            json!({ "o": source }),
        )
        .await["data"]["node"]["workspaces"]["nodes"][0]["id"]
        .as_str()
        .expect("workspace")
        .to_owned();
    let ana_source = app.add_member(&source, &ana).await;
    app.add_member(&target, &ana).await;
    let role = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": source, "name": "release-manager", "keys": ["servers.read", "servers.power"] } }),
        )
        .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    let team = create_team(&app, &owner, &source, "Deployers").await;
    ok(&grant(&app, &owner, &team, &role, None).await);
    ok(&grant(
        &app,
        &owner,
        &team,
        &builtin_role("workspace_viewer"),
        Some(&source_staging),
    )
    .await);
    ok(&add(&app, &owner, &team, &ana_source).await);

    let document = roles_document(&app, &owner, &source).await;
    for expected in [
        "teams:",
        "Deployers",
        "release-manager",
        "workspace_viewer",
        "staging",
        "ana@example.com",
    ] {
        assert!(document.contains(expected), "{expected} missing from\n{document}");
    }
    // Into another organization: the team, its roles and its people arrive; the export there is
    // the same document.
    let report = import(&app, &owner, &target, &document, "MERGE").await;
    ok(&report);
    assert!(named(&report, "created", "TEAM", "Deployers"), "{report}");
    assert!(named(&report, "created", "ROLE", "release-manager"), "{report}");
    assert_eq!(roles_document(&app, &owner, &target).await, document);
    let (allowed, why) = app.authorize(&ana, &target, "servers.power", None).await;
    assert!(allowed, "{why}");
    // Again: nothing to do.
    let report = import(&app, &owner, &target, &document, "MERGE").await;
    assert!(named(&report, "unchanged", "TEAM", "Deployers"), "{report}");

    // A member the organization does not have is refused, and nothing changes.
    let stranger = document.replace("ana@example.com", "stranger@example.com");
    let refused = import(&app, &owner, &target, &stranger, "MERGE").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(roles_document(&app, &owner, &target).await, document);
    // A team's roles follow the document: one dropped from the entry is revoked; members listed
    // as empty leave.
    let fewer = document
        .lines()
        .filter(|l| !l.contains("ana@example.com"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("members:", "members: []");
    let report = import(&app, &owner, &target, &fewer, "MERGE").await;
    assert!(named(&report, "updated", "TEAM", "Deployers"), "{report}");
    let (allowed, _) = app.authorize(&ana, &target, "servers.power", None).await;
    assert!(!allowed, "Ana left the team with the import");
    // A document without a `teams` key leaves teams alone, even in REPLACE mode: here the team
    // keeps the custom role in use, so REPLACE cannot delete it.
    let refused = import(&app, &owner, &target, "version: 1\n", "REPLACE").await;
    assert_eq!(error_code(&refused), "ROLE_IN_USE", "{refused}");
    assert!(roles_document(&app, &owner, &target).await.contains("Deployers"));
    // `teams: []` in REPLACE mode deletes them, and the role with them.
    let report = import(&app, &owner, &target, "version: 1\nteams: []\n", "REPLACE").await;
    ok(&report);
    assert!(named(&report, "deleted", "TEAM", "Deployers"), "{report}");
    assert!(named(&report, "deleted", "ROLE", "release-manager"), "{report}");
    let left = roles_document(&app, &owner, &target).await;
    assert!(!left.contains("teams:"), "{left}");

    // Teams name people: a reader of roles and keychains without `members.read` gets the
    // document without them, and cannot import teams (nor probe addresses through an import).
    let reader = app.sign_up("reader@example.com", "Reader").await;
    let reader_m = app.add_member(&source, &reader).await;
    let reader_role = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": source, "name": "definitions", "keys": ["roles.manage", "keychains.manage"] } }),
        )
        .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    ok(&app.change_role(&owner, true, &reader_m, &reader_role, None).await);
    let seen = roles_document(&app, &reader, &source).await;
    assert!(seen.contains("release-manager") && !seen.contains("teams:"), "{seen}");
    assert!(!seen.contains("ana@example.com"), "{seen}");
    let refused = app
        .gql(
            Some(&reader.access_token),
            "mutation($i: ImportRolesInput!) { importRoles(input: $i) { created { name } } }",
            json!({ "i": { "organizationId": source, "document": document, "format": "YAML", "dryRun": true } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    // The organization goes with its teams, a custom role bound to one included.
    let deleted = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: DeleteOrganizationInput!) { deleteOrganization(input: $i) { __typename } }",
            json!({ "i": { "organizationId": source, "confirmSlug": "source" } }),
        )
        .await;
    ok(&deleted);
    assert_eq!(app.count_rows("teams").await, 0);
    assert_eq!(app.count_rows("team_role_bindings").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_import_swapping_an_admin_teams_member_at_the_limit_takes_the_leaver_out_first() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    // Emails in the order that would add before removing: the joiner sorts first.
    let mut memberships = Vec::new();
    for email in ["a-joins@example.com", "b-stays@example.com", "c-leaves@example.com"] {
        let user = app.sign_up(email, "M").await;
        memberships.push(app.add_member(&org, &user).await);
    }
    let team = create_team(&app, &owner, &org, "admins").await;
    ok(&grant(&app, &owner, &team, &builtin_role("admin"), None).await);
    ok(&add(&app, &owner, &team, &memberships[1]).await);
    ok(&add(&app, &owner, &team, &memberships[2]).await);
    // FREE: three admins, the owner and the two: at the limit.
    let document = "version: 1\nteams:\n  - name: admins\n    roles:\n      - role: admin\n    members: [a-joins@example.com, b-stays@example.com]\n";
    let report = import(&app, &owner, &org, document, "MERGE").await;
    ok(&report);
    assert!(named(&report, "updated", "TEAM", "admins"), "{report}");
    let members = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!, $t: ID!) { node(id: $o) { ... on Organization { members(filter: { teamId: $t }) { nodes { id } } } } }",
            json!({ "o": org, "t": team }),
        )
        .await;
    let ids: Vec<&str> = members["data"]["node"]["members"]["nodes"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec![memberships[0].as_str(), memberships[1].as_str()], "{members}");
    app.stop().await;
}

#[tokio::test]
async fn a_team_change_is_previewed_as_it_then_happens() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let ana = app.sign_up("ana@example.com", "Ana").await;
    let org = app.create_organization(&owner, "acme").await;
    let staging = app.create_workspace(&owner, &org, "staging").await;
    let ana_m = app.add_member(&org, &ana).await;
    let team = create_team(&app, &owner, &org, "deployers").await;
    ok(&grant(&app, &owner, &team, &builtin_role("workspace_admin"), Some(&staging)).await);
    let before = viewer_keys(&app, &ana, &org, &staging).await;
    let preview = app
        .gql(
            Some(&owner.access_token),
            "query($o: ID!, $c: RoleChangeInput!) { previewRoleChange(organizationId: $o, change: $c) {
               gaining losing changes { membership { id } workspace { id } gained lost } } }",
            json!({ "o": org, "c": { "addTeamMember": { "teamId": team, "membershipId": ana_m } } }),
        )
        .await;
    ok(&preview);
    let impact = &preview["data"]["previewRoleChange"];
    assert_eq!(impact["gaining"], 1, "{preview}");
    assert_eq!(impact["losing"], 0, "{preview}");
    let change = &impact["changes"][0];
    assert_eq!(change["membership"]["id"], ana_m.as_str());
    assert_eq!(change["workspace"]["id"], staging.as_str());
    // Nothing was written.
    assert_eq!(app.count_rows("team_members").await, 0);
    ok(&add(&app, &owner, &team, &ana_m).await);
    let after = viewer_keys(&app, &ana, &org, &staging).await;
    let gained: Vec<Value> = after.iter().filter(|k| !before.contains(k)).cloned().collect();
    assert_eq!(json!(gained), change["gained"], "the preview differs from the change");
    app.stop().await;
}

async fn viewer_keys(app: &TestApp, user: &TestUser, org: &str, workspace: &str) -> Vec<Value> {
    let body = app
        .gql(
            Some(&user.access_token),
            "query($o: ID!, $w: ID) { node(id: $o) { ... on Organization { viewerKeys(workspaceId: $w) } } }",
            json!({ "o": org, "w": workspace }),
        )
        .await;
    body["data"]["node"]["viewerKeys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
