//! The cross-organization probe: every query field that takes an argument, every mutation that
//! names an object and every kind of node is tried, with organization B's real IDs and with
//! made-up IDs of the same kinds, by three outsiders: a user who was never a member of B, a
//! member B removed, and an owner of B acting through a token confined to another organization.
//! The schema is read by introspection, so a field added later is probed without anyone
//! remembering to. Nothing may tell B's real objects from made-up ones (same data, same codes,
//! same messages), and B must be unchanged afterwards.
use std::collections::HashMap;

use guildhall::graphql::ids::{NodeKind, encode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, builtin_role, error_code, raw_id, spawn_app};

const TYPE_REF: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";

/// Objects of organization B, by the argument names that refer to them.
#[derive(Clone)]
struct Targets {
    ids: HashMap<&'static str, String>,
    slug: String,
}

impl Targets {
    fn id_for(&self, argument: &str) -> String {
        let key = match argument {
            "toMembershipId" | "membershipId" => "membership",
            "roleId" => "role",
            "keychainId" | "keychainIds" => "keychain",
            "workspaceId" => "workspace",
            "invitationId" => "invitation",
            "apiTokenId" => "apiToken",
            "teamId" => "team",
            _ => "organization",
        };
        self.ids[key].clone()
    }

    /// The same kinds of objects, none of which exists.
    fn made_up(&self) -> Targets {
        let ids = self
            .ids
            .iter()
            .map(|(name, id)| {
                let (kind, _) = guildhall::graphql::ids::decode_any(&async_graphql::ID(id.clone())).expect("an id");
                (*name, encode(kind, Uuid::now_v7()).0)
            })
            .collect();
        Targets {
            ids,
            slug: "no-such-organization".to_owned(),
        }
    }
}

/// The innermost named type and whether the outermost is a list.
fn named(ty: &Value) -> (String, bool) {
    let mut is_list = false;
    let mut t = ty;
    loop {
        match t["kind"].as_str() {
            Some("NON_NULL") => t = &t["ofType"],
            Some("LIST") => {
                is_list = true;
                t = &t["ofType"];
            }
            _ => return (t["name"].as_str().unwrap_or_default().to_owned(), is_list),
        }
    }
}

fn required(ty: &Value) -> bool {
    ty["kind"] == "NON_NULL"
}

/// A value for an input of the schema, with B's objects (or made-up ones) wherever an ID goes.
fn value_for(types: &HashMap<String, Value>, name: &str, ty: &Value, targets: &Targets, depth: usize) -> Value {
    let (type_name, is_list) = named(ty);
    let single = match type_name.as_str() {
        "ID" => json!(targets.id_for(name)),
        "String" => json!(match name {
            "slug" => "probe-slug".to_owned(),
            "confirmSlug" => targets.slug.clone(),
            "email" => "probe@example.com".to_owned(),
            "key" => "members.read".to_owned(),
            "keys" => "members.read".to_owned(),
            "password" | "newPassword" | "currentPassword" => PASSWORD.to_owned(),
            "document" => "{\"version\": 1}".to_owned(),
            "token" | "refreshToken" => "ghi_probe".to_owned(),
            _ => "probe".to_owned(),
        }),
        "Boolean" => json!(false),
        "Int" => json!(1),
        "DateTime" => json!("2099-01-01T00:00:00Z"),
        other => match types.get(other) {
            Some(t) if t["kind"] == "ENUM" => t["enumValues"][0]["name"].clone(),
            Some(t) if t["kind"] == "INPUT_OBJECT" && depth < 3 => {
                let mut object = serde_json::Map::new();
                for field in t["inputFields"].as_array().into_iter().flatten() {
                    let field_name = field["name"].as_str().unwrap_or_default();
                    let (inner, _) = named(&field["type"]);
                    // Required fields, and every optional reference to an object.
                    if required(&field["type"]) || inner == "ID" {
                        object.insert(
                            field_name.to_owned(),
                            value_for(types, field_name, &field["type"], targets, depth + 1),
                        );
                    }
                }
                Value::Object(object)
            }
            _ => Value::Null,
        },
    };
    if is_list { json!([single]) } else { single }
}

/// The answer with what differs between any two requests (request ids) removed.
fn comparable(mut body: Value) -> Value {
    if let Some(errors) = body["errors"].as_array_mut() {
        for error in errors {
            if let Some(extensions) = error["extensions"].as_object_mut() {
                extensions.remove("requestId");
            }
            if let Some(object) = error.as_object_mut() {
                object.remove("locations");
            }
        }
    }
    body
}

/// B as its owner sees it: everything the probe must leave unchanged.
async fn fingerprint(app: &TestApp, token: &str, slug: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            "query($s: String!) { organization(slug: $s) { id slug name plan
               members(first: 100) { totalCount nodes { id user { id name email } roleBindings { role { id name } workspace { id } } } }
               roles { id name keys keychains { id } } keychains { id name keys }
               workspaces(first: 100) { nodes { id slug name description } }
               invitations(first: 100) { nodes { id status email expiresAt } }
               teams(first: 100) { nodes { id name description memberCount roleBindings { role { id } workspace { id } } } } }
             viewer { apiTokens { id name revokedAt expiresAt } } }",
            json!({ "s": slug }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn no_outsider_reaches_anything_of_another_organization() {
    let app = spawn_app().await;
    let bea = app.sign_up("bea@example.com", "Bea").await;
    let org_b = app.create_organization(&bea, "bravo").await;
    let ws = app.create_workspace(&bea, &org_b, "prod").await;
    let gql = |token: String, query: &'static str, variables: Value| {
        let app = &app;
        async move { app.gql(Some(&token), query, variables).await }
    };
    let chain = gql(
        bea.access_token.clone(),
        "mutation($i: CreateKeychainInput!) { createKeychain(input: $i) { keychain { id } } }",
        json!({ "i": { "organizationId": org_b, "name": "ops", "keys": ["servers.read"] } }),
    )
    .await["data"]["createKeychain"]["keychain"]["id"]
        .as_str()
        .expect("keychain")
        .to_owned();
    let role = gql(
        bea.access_token.clone(),
        "mutation($i: CreateRoleInput!) { createRole(input: $i) { role { id } } }",
        json!({ "i": { "organizationId": org_b, "name": "operators", "keychainIds": [chain] } }),
    )
    .await["data"]["createRole"]["role"]["id"]
        .as_str()
        .expect("role")
        .to_owned();
    let invitation = gql(
        bea.access_token.clone(),
        "mutation($i: InviteMemberInput!) { inviteMember(input: $i) { invitation { id } } }",
        json!({ "i": { "organizationId": org_b, "email": "later@example.com" } }),
    )
    .await["data"]["inviteMember"]["invitation"]["id"]
        .as_str()
        .expect("invitation")
        .to_owned();
    let token = gql(
        bea.access_token.clone(),
        "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { apiToken { id } } }",
        json!({ "i": { "name": "ci", "organizationId": org_b } }),
    )
    .await["data"]["createApiToken"]["apiToken"]["id"]
        .as_str()
        .expect("token")
        .to_owned();

    // The outsiders: never a member; removed; an owner of B through a token confined to A.
    let never = app.sign_up("never@example.com", "Never").await;
    let removed = app.sign_up("removed@example.com", "Removed").await;
    let confined_owner = app.sign_up("both@example.com", "Both").await;
    let org_a = app.create_organization(&confined_owner, "alpha").await;
    app.create_organization(&never, "never-org").await;
    let removed_membership = app.add_member(&org_b, &removed).await;
    assert!(
        app.change_role(&bea, true, &removed_membership, &builtin_role("admin"), None)
            .await["errors"]
            .is_null()
    );
    let owner_membership = app.add_member(&org_b, &confined_owner).await;
    assert!(
        app.change_role(&bea, true, &owner_membership, &builtin_role("owner"), None)
            .await["errors"]
            .is_null()
    );
    let team = gql(
        bea.access_token.clone(),
        "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
        json!({ "i": { "organizationId": org_b, "name": "deployers" } }),
    )
    .await["data"]["createTeam"]["team"]["id"]
        .as_str()
        .expect("team")
        .to_owned();
    for (mutation, input) in [
        (
            "mutation($i: GrantTeamRoleInput!) { grantTeamRole(input: $i) { team { id } } }",
            json!({ "teamId": team, "roleId": builtin_role("workspace_viewer"), "workspaceId": ws }),
        ),
        (
            "mutation($i: AddTeamMemberInput!) { addTeamMember(input: $i) { team { id } } }",
            json!({ "teamId": team, "membershipId": owner_membership }),
        ),
        (
            "mutation($i: AddTeamMemberInput!) { addTeamMember(input: $i) { team { id } } }",
            json!({ "teamId": team, "membershipId": removed_membership }),
        ),
    ] {
        let body = gql(bea.access_token.clone(), mutation, json!({ "i": input })).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = gql(
        bea.access_token.clone(),
        "mutation($i: RemoveMemberInput!) { removeMember(input: $i) { removedMembershipId } }",
        json!({ "i": { "membershipId": removed_membership } }),
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let confined = gql(
        confined_owner.access_token.clone(),
        "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
        json!({ "i": { "name": "only-a", "organizationId": org_a } }),
    )
    .await["data"]["createApiToken"]["token"]
        .as_str()
        .expect("confined token")
        .to_owned();
    let audit_event = gql(
        bea.access_token.clone(),
        "{ organization(slug: \"bravo\") { auditLog(first: 1) { nodes { id } } } }",
        json!({}),
    )
    .await["data"]["organization"]["auditLog"]["nodes"][0]["id"]
        .as_str()
        .expect("audit event")
        .to_owned();

    let real = Targets {
        ids: HashMap::from([
            ("organization", org_b.clone()),
            ("membership", owner_membership.clone()),
            ("role", role),
            ("keychain", chain),
            ("workspace", ws),
            ("invitation", invitation),
            ("apiToken", token),
            ("team", team),
        ]),
        slug: "bravo".to_owned(),
    };
    let fake = real.made_up();
    let mut node_ids: Vec<String> = real.ids.values().cloned().collect();
    node_ids.push(audit_event);
    node_ids.push(encode(NodeKind::User, raw_id(&bea.id)).0);

    let schema = app
        .gql(
            None,
            &format!(
                "{{ __schema {{ queryType {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }} }} }}
                   mutationType {{ fields {{ name args {{ name type {{ {TYPE_REF} }} }} }} }}
                   types {{ name kind enumValues {{ name }} inputFields {{ name type {{ {TYPE_REF} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let types: HashMap<String, Value> = schema["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or_default().to_owned(), t.clone()))
        .collect();
    let before = fingerprint(&app, &bea.access_token, "bravo").await;

    // Each probe: (description, query, variables with real IDs, variables with made-up IDs).
    let mut probes: Vec<(String, String, Value, Value)> = Vec::new();
    for field in schema["data"]["__schema"]["queryType"]["fields"]
        .as_array()
        .expect("query fields")
    {
        let name = field["name"].as_str().expect("name");
        let args = field["args"].as_array().expect("args");
        if args.is_empty() {
            continue;
        }
        let selection = match name {
            "node" => "{ __typename ... on Node { id } }",
            "nodes" => "{ __typename ... on Node { id } }",
            "organization" => "{ id name }",
            "authorize" => "{ allowed reason grants { key } }",
            _ => "{ __typename }",
        };
        let selection = if types
            .get(&named(&field["type"]).0)
            .is_some_and(|t| t["kind"] == "SCALAR" || t["kind"] == "ENUM")
        {
            ""
        } else {
            selection
        };
        let declared: Vec<String> = args
            .iter()
            .map(|a| format!("${}: {}", a["name"].as_str().expect("arg"), type_text(&a["type"])))
            .collect();
        let passed: Vec<String> = args
            .iter()
            .map(|a| format!("{0}: ${0}", a["name"].as_str().expect("arg")))
            .collect();
        let query = format!(
            "query({}) {{ {name}({}) {selection} }}",
            declared.join(", "),
            passed.join(", ")
        );
        let vars = |targets: &Targets| -> Vec<Value> {
            let mut out = Vec::new();
            let ids: Vec<String> = match name {
                "node" | "nodes" => node_ids.clone(),
                _ => vec![String::new()],
            };
            for id in ids {
                let mut object = serde_json::Map::new();
                for a in args {
                    let arg = a["name"].as_str().expect("arg");
                    let value = match (name, arg) {
                        ("node", "id") => json!(if targets.slug == "bravo" {
                            id.clone()
                        } else {
                            fake_like(&id)
                        }),
                        ("nodes", "ids") => json!([if targets.slug == "bravo" {
                            id.clone()
                        } else {
                            fake_like(&id)
                        }]),
                        ("organization", "slug") => json!(targets.slug),
                        _ => value_for(&types, arg, &a["type"], targets, 0),
                    };
                    object.insert(arg.to_owned(), value);
                }
                out.push(Value::Object(object));
            }
            out
        };
        for (real_vars, fake_vars) in vars(&real).into_iter().zip(vars(&fake)) {
            probes.push((format!("query {name}"), query.clone(), real_vars, fake_vars));
        }
    }
    for field in schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("mutation fields")
    {
        let name = field["name"].as_str().expect("name");
        let Some(input) = field["args"].as_array().and_then(|a| a.first()) else {
            continue;
        };
        let input_type = named(&input["type"]).0;
        let names_an_object = types[&input_type]["inputFields"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| named(&f["type"]).0 == "ID");
        if !names_an_object {
            continue;
        }
        let query = format!("mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename }} }}");
        let real_vars = json!({ "input": value_for(&types, "input", &input["type"], &real, 0) });
        let fake_vars = json!({ "input": value_for(&types, "input", &input["type"], &fake, 0) });
        probes.push((format!("mutation {name}"), query, real_vars, fake_vars));
    }

    let mut run = 0;
    let mut leaks = Vec::new();
    for (who, bearer) in [
        ("never a member", never.access_token.as_str()),
        ("removed member", removed.access_token.as_str()),
        ("owner through a token of another organization", confined.as_str()),
    ] {
        for (what, query, real_vars, fake_vars) in &probes {
            let on_real = comparable(app.gql(Some(bearer), query, real_vars.clone()).await);
            let on_fake = comparable(app.gql(Some(bearer), query, fake_vars.clone()).await);
            run += 1;
            let allowed_codes = ["NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED", "BAD_USER_INPUT", ""];
            if on_real != on_fake || !allowed_codes.contains(&error_code(&on_real).as_str()) {
                leaks.push(format!("{who}: {what}\n  real: {on_real}\n  made-up: {on_fake}"));
            }
        }
    }
    // The probe has teeth: B's own owner, asked the same queries, does tell real from made-up.
    let mut told_apart = 0;
    for (what, query, real_vars, fake_vars) in probes.iter().filter(|p| p.0.starts_with("query")) {
        let on_real = comparable(app.gql(Some(&bea.access_token), query, real_vars.clone()).await);
        let on_fake = comparable(app.gql(Some(&bea.access_token), query, fake_vars.clone()).await);
        if on_real != on_fake {
            told_apart += 1;
        } else {
            println!("the owner cannot tell apart: {what}");
        }
    }
    assert!(told_apart >= 10, "the owner told only {told_apart} probes apart");
    let after = fingerprint(&app, &bea.access_token, "bravo").await;
    println!(
        "cross-organization probe: {run} probes run, {} leaks ({told_apart} queries told apart by B's own owner)",
        leaks.len()
    );
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert_eq!(before, after, "organization B changed under the probe");
    assert!(run >= 100, "only {run} probes ran");
    app.stop().await;
}

/// A made-up ID of the same kind as `id`.
fn fake_like(id: &str) -> String {
    let (kind, _) = guildhall::graphql::ids::decode_any(&async_graphql::ID(id.to_owned())).expect("an id");
    encode(kind, Uuid::now_v7()).0
}

/// A type reference as GraphQL text.
fn type_text(ty: &Value) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_text(&ty["ofType"])),
        Some("LIST") => format!("[{}]", type_text(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or_default().to_owned(),
    }
}
