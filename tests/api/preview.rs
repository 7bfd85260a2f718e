//! Change previews: `previewRoleChange` runs the change through its own mutation and rolls it
//! back, answering who would gain and lose which keys at which scope. The preview writes
//! nothing, refuses what the mutation refuses, and — a randomized property test over sequences
//! of changes — equals what the real mutation then does, compared from the database.
use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_role, error_code, raw_id, spawn_app};

const PREVIEW: &str = "query($o: ID!, $c: RoleChangeInput!) { previewRoleChange(organizationId: $o, change: $c) {
  gaining losing changes { membership { id } workspace { id } gained lost } } }";

/// A comparable form of changes: (membership, workspace, gained, lost), sorted.
type Changes = BTreeSet<(String, Option<String>, Vec<String>, Vec<String>)>;

fn from_response(impact: &Value) -> Changes {
    impact["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {impact}"))
        .iter()
        .map(|c| {
            let names = |v: &Value| {
                let mut names: Vec<String> = v
                    .as_array()
                    .expect("names")
                    .iter()
                    .map(|n| n.as_str().expect("name").to_owned())
                    .collect();
                names.sort();
                names
            };
            (
                c["membership"]["id"].as_str().expect("id").to_owned(),
                c["workspace"]["id"].as_str().map(str::to_owned),
                names(&c["gained"]),
                names(&c["lost"]),
            )
        })
        .collect()
}

async fn snapshot(app: &TestApp, org: &str) -> guildhall::domain::preview::Snapshot {
    guildhall::domain::preview::snapshot(&app.app.store.conn, &app.app, raw_id(org))
        .await
        .expect("snapshot")
}

fn from_diff(app: &TestApp, changes: Vec<guildhall::domain::preview::Change>) -> Changes {
    use guildhall::graphql::ids::{NodeKind, encode};
    changes
        .into_iter()
        .map(|c| {
            let mut gained = app.app.catalog.names(&c.gained);
            let mut lost = app.app.catalog.names(&c.lost);
            gained.sort();
            lost.sort();
            (
                encode(NodeKind::Membership, c.membership.id).0,
                c.workspace_id.map(|w| encode(NodeKind::Workspace, w).0),
                gained,
                lost,
            )
        })
        .collect()
}

/// `{ "mutationName": input }` of a change, as both the mutation and the preview take it.
fn mutation_of(change: &Value) -> (String, Value) {
    let (name, input) = change.as_object().expect("one change").iter().next().expect("a change");
    (name.clone(), input.clone())
}

async fn run_mutation(app: &TestApp, token: &str, change: &Value) -> Value {
    let (name, input) = mutation_of(change);
    let input_type = name[..1].to_uppercase() + &name[1..] + "Input";
    app.gql(
        Some(token),
        &format!("mutation($i: {input_type}!) {{ {name}(input: $i) {{ __typename }} }}"),
        json!({ "i": input }),
    )
    .await
}

struct World {
    org: String,
    staging: String,
    deployers: String,
    deployer: String,
    people: Vec<(TestUser, String)>,
}

async fn world(app: &TestApp, owner: &TestUser) -> World {
    let org = app.create_organization(owner, "acme").await;
    let staging = app.create_workspace(owner, &org, "staging").await;
    let keychain = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
            json!({ "i": { "organizationId": org, "name": "deployers", "keys": ["servers.read", "servers.power"] } }),
        )
        .await;
    let deployers = keychain["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{keychain}"))
        .to_owned();
    let role = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
            json!({ "i": { "organizationId": org, "name": "deployer", "keychainIds": [deployers], "scope": "ANY" } }),
        )
        .await;
    let deployer = role["data"]["createRole"]["role"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{role}"))
        .to_owned();
    let mut people = Vec::new();
    for name in ["ana", "bob", "cy"] {
        let user = app.sign_up(&format!("{name}@example.com"), name).await;
        let membership = app.add_member(&org, &user).await;
        people.push((user, membership));
    }
    World {
        org,
        staging,
        deployers,
        deployer,
        people,
    }
}

#[tokio::test]
async fn a_preview_says_who_loses_what_writes_nothing_and_refuses_what_the_mutation_refuses() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let w = world(&app, &owner).await;
    let (ana, ana_membership) = (&w.people[0].0, &w.people[0].1);
    let grant =
        json!({ "grantRole": { "membershipId": ana_membership, "roleId": w.deployer, "workspaceId": w.staging } });
    assert!(run_mutation(&app, &owner.access_token, &grant).await["errors"].is_null());
    let user_admin = json!({ "grantRole": { "membershipId": w.people[1].1, "roleId": builtin_role("user_admin") } });
    assert!(run_mutation(&app, &owner.access_token, &user_admin).await["errors"].is_null());

    // "If I remove servers.power from the deployers keychain, who loses what?"
    let change = json!({ "updateKeychain": { "keychainId": w.deployers, "keys": ["servers.read"] } });
    let events = app.count_rows("audit_events").await;
    let before = snapshot(&app, &w.org).await;
    let body = app
        .gql(Some(&owner.access_token), PREVIEW, json!({ "o": w.org, "c": change }))
        .await;
    let impact = &body["data"]["previewRoleChange"];
    assert_eq!(
        from_response(impact),
        Changes::from([(
            ana_membership.clone(),
            Some(w.staging.clone()),
            vec![],
            vec!["servers.power".to_owned()]
        )]),
        "{body}"
    );
    assert_eq!(
        (impact["gaining"].clone(), impact["losing"].clone()),
        (json!(0), json!(1))
    );
    // Nothing was written: same access, no audit event, and Ana still holds the key.
    assert_eq!(app.count_rows("audit_events").await, events);
    assert!(
        from_diff(
            &app,
            guildhall::domain::preview::diff(&app.app.catalog, &before, &snapshot(&app, &w.org).await)
        )
        .is_empty()
    );
    let (allowed, why) = app.authorize(ana, &w.org, "servers.power", Some(&w.staging)).await;
    assert!(allowed, "{why}");

    // What the preview said is what the change does.
    assert!(run_mutation(&app, &owner.access_token, &change).await["errors"].is_null());
    let after = snapshot(&app, &w.org).await;
    assert_eq!(
        from_diff(
            &app,
            guildhall::domain::preview::diff(&app.app.catalog, &before, &after)
        ),
        from_response(impact)
    );

    // Refused as the mutation is: a user administrator cannot preview granting admin; an
    // outsider finds no organization.
    let bob = &w.people[1].0;
    let admin = json!({ "grantRole": { "membershipId": w.people[2].1, "roleId": builtin_role("admin") } });
    let previewed = app
        .gql(Some(&bob.access_token), PREVIEW, json!({ "o": w.org, "c": admin }))
        .await;
    let mutated = run_mutation(&app, &bob.access_token, &admin).await;
    assert_eq!(error_code(&previewed), "FORBIDDEN", "{previewed}");
    assert_eq!(error_code(&mutated), "FORBIDDEN", "{mutated}");
    let outsider = app.sign_up("eve@example.com", "Eve").await;
    let body = app
        .gql(Some(&outsider.access_token), PREVIEW, json!({ "o": w.org, "c": admin }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Exactly one change: two are a BAD_USER_INPUT of the input itself.
    let two = json!({ "grantRole": admin["grantRole"], "removeMember": { "membershipId": ana_membership } });
    let body = app
        .gql(Some(&owner.access_token), PREVIEW, json!({ "o": w.org, "c": two }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    // Removing a member: everything they hold, everywhere.
    let removal = json!({ "removeMember": { "membershipId": ana_membership } });
    let body = app
        .gql(Some(&owner.access_token), PREVIEW, json!({ "o": w.org, "c": removal }))
        .await;
    assert_eq!(
        from_response(&body["data"]["previewRoleChange"]),
        Changes::from([(
            ana_membership.clone(),
            Some(w.staging.clone()),
            vec![],
            vec!["servers.read".to_owned()]
        )]),
        "{body}"
    );
    assert_eq!(app.count_rows("memberships").await, 4, "nobody was removed");

    // importRoles(dryRun: true) reports the same impact as previewing the import.
    let document = json!({ "version": 1, "keychains": [{ "name": "deployers", "keys": ["servers.read", "servers.power", "servers.console"] }] }).to_string();
    let import = json!({ "organizationId": w.org, "document": document, "format": "JSON" });
    let previewed = app
        .gql(
            Some(&owner.access_token),
            PREVIEW,
            json!({ "o": w.org, "c": { "importRoles": import } }),
        )
        .await;
    let mut dry = import.clone();
    dry["dryRun"] = json!(true);
    let dry_run = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: ImportRolesInput!) { importRoles(input: $i) { dryRun updated { name }
                impact { gaining losing changes { membership { id } workspace { id } gained lost } } } }",
            json!({ "i": dry }),
        )
        .await;
    let payload = &dry_run["data"]["importRoles"];
    assert_eq!(payload["dryRun"], true, "{dry_run}");
    let impact = from_response(&payload["impact"]);
    assert_eq!(
        impact,
        from_response(&previewed["data"]["previewRoleChange"]),
        "{dry_run} {previewed}"
    );
    assert!(
        impact
            .iter()
            .any(|(m, _, gained, _)| m == ana_membership && gained.contains(&"servers.console".to_owned())),
        "{dry_run}"
    );

    // A key lost organization-wide but kept in a workspace: the workspace entry says so.
    let cy = &w.people[2].1;
    for change in [
        json!({ "grantRole": { "membershipId": cy, "roleId": builtin_role("viewer") } }),
        json!({ "grantRole": { "membershipId": cy, "roleId": w.deployer, "workspaceId": w.staging } }),
    ] {
        let body = run_mutation(&app, &owner.access_token, &change).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let revoke = json!({ "revokeRole": { "membershipId": cy, "roleId": builtin_role("viewer") } });
    let body = app
        .gql(Some(&owner.access_token), PREVIEW, json!({ "o": w.org, "c": revoke }))
        .await;
    let entries = from_response(&body["data"]["previewRoleChange"]);
    let org_wide = entries
        .iter()
        .find(|(m, ws, _, _)| m == cy && ws.is_none())
        .unwrap_or_else(|| panic!("{body}"));
    assert!(org_wide.3.contains(&"servers.read".to_owned()), "{body}");
    let staging = entries
        .iter()
        .find(|(m, ws, _, _)| m == cy && ws.as_deref() == Some(w.staging.as_str()))
        .unwrap_or_else(|| panic!("the workspace where servers.read stays is listed: {body}"));
    assert!(!staging.3.contains(&"servers.read".to_owned()), "{body}");
    assert!(staging.3.contains(&"databases.read".to_owned()), "{body}");
    app.stop().await;
}

/// A random change of the world: grants and revocations at both scopes, role and keychain
/// edits, keychain assignments, removals; mostly by the owner, sometimes by a member.
fn random_change(rng: &mut StdRng, w: &World, removed: &[String]) -> (usize, Value) {
    let present: Vec<&(TestUser, String)> = w.people.iter().filter(|(_, m)| !removed.contains(m)).collect();
    let roles = [
        w.deployer.clone(),
        builtin_role("viewer"),
        builtin_role("member"),
        builtin_role("user_admin"),
        builtin_role("workspace_viewer"),
    ];
    let keys = [
        "servers.read",
        "servers.power",
        "servers.manage",
        "databases.read",
        "backups.read",
    ];
    let subset = |rng: &mut StdRng| -> Vec<&str> { keys.iter().copied().filter(|_| rng.random_bool(0.5)).collect() };
    let actor = if rng.random_bool(0.8) {
        0
    } else {
        1 + rng.random_range(0..w.people.len())
    };
    let change = match rng.random_range(0..10) {
        0..=3 if !present.is_empty() => {
            let (_, membership) = present[rng.random_range(0..present.len())];
            let role = &roles[rng.random_range(0..roles.len())];
            let workspace = if role == &builtin_role("workspace_viewer") || rng.random_bool(0.3) {
                json!(w.staging)
            } else {
                Value::Null
            };
            let kind = if rng.random_bool(0.6) {
                "grantRole"
            } else {
                "revokeRole"
            };
            json!({ kind: { "membershipId": membership, "roleId": role, "workspaceId": workspace } })
        }
        4 | 5 => json!({ "updateKeychain": { "keychainId": w.deployers, "keys": subset(rng) } }),
        6 => json!({ "updateRole": { "roleId": w.deployer, "keys": subset(rng) } }),
        7 => {
            let kind = if rng.random_bool(0.5) {
                "assignKeychainToRole"
            } else {
                "unassignKeychainFromRole"
            };
            json!({ kind: { "keychainId": w.deployers, "roleId": w.deployer } })
        }
        8 if present.len() > 1 => {
            let (_, membership) = present[rng.random_range(0..present.len())];
            json!({ "removeMember": { "membershipId": membership } })
        }
        _ => json!({ "updateKeychain": { "keychainId": w.deployers, "keys": subset(rng) } }),
    };
    (actor, change)
}

#[tokio::test]
async fn every_previewed_change_does_exactly_what_its_preview_said() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let w = world(&app, &owner).await;
    // Bob may manage people (so some of his changes pass and some are refused).
    let body = run_mutation(
        &app,
        &owner.access_token,
        &json!({ "grantRole": { "membershipId": w.people[1].1, "roleId": builtin_role("user_admin") } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let mut removed: Vec<String> = Vec::new();
    let (mut compared, mut refused, mut changing) = (0, 0, 0);
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(0x6775_696c_6468 + seed);
        for step in 0..14 {
            let (actor, change) = random_change(&mut rng, &w, &removed);
            let token = if actor == 0 {
                &owner.access_token
            } else {
                &w.people[actor - 1].0.access_token
            };
            if actor > 0 && removed.contains(&w.people[actor - 1].1) {
                continue;
            }
            let before = snapshot(&app, &w.org).await;
            let previewed = app.gql(Some(token), PREVIEW, json!({ "o": w.org, "c": change })).await;
            let unchanged = snapshot(&app, &w.org).await;
            assert!(
                guildhall::domain::preview::diff(&app.app.catalog, &before, &unchanged).is_empty(),
                "seed {seed} step {step}: the preview wrote something: {change}"
            );
            let done = run_mutation(&app, token, &change).await;
            let after = snapshot(&app, &w.org).await;
            let real = from_diff(
                &app,
                guildhall::domain::preview::diff(&app.app.catalog, &before, &after),
            );
            if previewed["errors"].is_null() {
                assert!(
                    done["errors"].is_null(),
                    "seed {seed} step {step}: previewed, then refused: {change} {done}"
                );
                let said = from_response(&previewed["data"]["previewRoleChange"]);
                assert_eq!(real, said, "seed {seed} step {step}: {change}");
                compared += 1;
                changing += usize::from(!said.is_empty());
                if let Some(input) = change.get("removeMember") {
                    removed.push(input["membershipId"].as_str().expect("id").to_owned());
                }
            } else {
                assert_eq!(
                    error_code(&previewed),
                    error_code(&done),
                    "seed {seed} step {step}: {change} {previewed} {done}"
                );
                assert!(
                    real.is_empty(),
                    "seed {seed} step {step}: a refused change changed access"
                );
                refused += 1;
            }
        }
    }
    assert!(
        compared >= 15 && changing >= 5 && refused >= 1,
        "{compared} compared, {changing} changing, {refused} refused"
    );
    app.stop().await;
}
