//! Organizations: creation with an owner, lookups, changes, deletion, isolation between them.
use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn creator_becomes_owner_and_sees_the_organization() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org_id = app.create_organization(&ada, "acme").await;
    let body = app
        .gql(
            Some(&ada.access_token),
            r#"{ organization(slug: "acme") {
                id slug name plan
                viewerMembership { unassigned user { id email } organization { slug }
                  roleBindings { role { name kind scope } workspace { id } grantedBy { id } grantedAt } }
                viewerCan(key: "organization.delete")
            } }"#,
            json!({}),
        )
        .await;
    let org = &body["data"]["organization"];
    assert_eq!(org["id"], org_id.as_str(), "{body}");
    assert_eq!(org["plan"], "FREE");
    assert_eq!(org["viewerCan"], true);
    let membership = &org["viewerMembership"];
    assert_eq!(membership["unassigned"], false);
    assert_eq!(membership["user"]["id"], ada.id.as_str());
    assert_eq!(membership["organization"]["slug"], "acme");
    let bindings = membership["roleBindings"].as_array().expect("bindings");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["role"]["name"], "owner");
    assert_eq!(bindings[0]["role"]["kind"], "BUILT_IN");
    assert!(bindings[0]["workspace"].is_null());
    assert_eq!(bindings[0]["grantedBy"]["id"], ada.id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn slugs_are_validated_and_unique() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    app.create_organization(&ada, "acme").await;
    let create =
        "mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { organization { id } } }";
    let body = app
        .gql(
            Some(&ada.access_token),
            create,
            json!({ "input": { "name": "Again", "slug": "acme" } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "slug");
    for bad in ["AC", "Acme", "acme_inc", "-acme"] {
        let body = app
            .gql(
                Some(&ada.access_token),
                create,
                json!({ "input": { "name": "Bad", "slug": bad } }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "slug");
    }
    assert_eq!(app.count_rows("organizations").await, 1);
    assert_eq!(app.count_rows("memberships").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn viewer_organizations_is_a_paginated_connection() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    for slug in ["org-one", "org-two", "org-three"] {
        app.create_organization(&ada, slug).await;
    }
    let query = "query($after: String) { viewer { organizations(first: 2, after: $after) {
        totalCount edges { cursor node { slug } } pageInfo { hasNextPage endCursor } } } }";
    let first = app.gql(Some(&ada.access_token), query, json!({})).await;
    let conn = &first["data"]["viewer"]["organizations"];
    assert_eq!(conn["totalCount"], 3);
    let slugs: Vec<&str> = conn["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["org-one", "org-two"]);
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let second = app
        .gql(
            Some(&ada.access_token),
            query,
            json!({ "after": conn["pageInfo"]["endCursor"] }),
        )
        .await;
    let conn = &second["data"]["viewer"]["organizations"];
    assert_eq!(conn["edges"][0]["node"]["slug"], "org-three");
    assert_eq!(conn["edges"].as_array().expect("edges").len(), 1);
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);

    let too_many = app
        .gql(
            Some(&ada.access_token),
            "{ viewer { organizations(first: 101) { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
    assert_eq!(too_many["errors"][0]["extensions"]["field"], "first");
    let bad_cursor = app
        .gql(
            Some(&ada.access_token),
            "{ viewer { organizations(after: \"nope\") { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(bad_cursor["errors"][0]["extensions"]["field"], "after");
    app.stop().await;
}

#[tokio::test]
async fn update_and_delete_need_the_right_keys_and_confirmation() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org_id = app.create_organization(&ada, "acme").await;
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name slug plan } } }",
            json!({ "input": { "organizationId": org_id, "name": "Acme Inc", "slug": "acme-inc", "plan": "TEAM" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateOrganization"]["organization"],
        json!({ "name": "Acme Inc", "slug": "acme-inc", "plan": "TEAM" })
    );

    let delete =
        "mutation($input: DeleteOrganizationInput!) { deleteOrganization(input: $input) { deletedOrganizationId } }";
    let wrong = app
        .gql(
            Some(&ada.access_token),
            delete,
            json!({ "input": { "organizationId": org_id, "confirmSlug": "acme" } }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(wrong["errors"][0]["extensions"]["field"], "confirmSlug");
    assert_eq!(app.count_rows("organizations").await, 1);
    let done = app
        .gql(
            Some(&ada.access_token),
            delete,
            json!({ "input": { "organizationId": org_id, "confirmSlug": "acme-inc" } }),
        )
        .await;
    assert_eq!(
        done["data"]["deleteOrganization"]["deletedOrganizationId"],
        org_id.as_str(),
        "{done}"
    );
    assert_eq!(app.count_rows("organizations").await, 0);
    assert_eq!(app.count_rows("memberships").await, 0);
    assert_eq!(app.count_rows("role_bindings").await, 0);
    // The audit trail outlives the organization.
    let audit = app.count_rows("audit_events").await;
    assert!(audit >= 3, "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn another_users_organization_is_not_found_everywhere() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let org_id = app.create_organization(&ada, "acme").await;
    let membership = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { viewerMembership { id } } }",
            json!({}),
        )
        .await;
    let membership_id = membership["data"]["organization"]["viewerMembership"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let body = app
        .gql(
            Some(&bob.access_token),
            "query($org: ID!, $m: ID!, $u: ID!) { organization(slug: \"acme\") { id } node(id: $org) { id } m: node(id: $m) { id } u: node(id: $u) { id } nodes(ids: [$org, $m]) { id } }",
            json!({ "org": org_id, "m": membership_id, "u": ada.id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["organization"].is_null());
    assert!(body["data"]["node"].is_null());
    assert!(body["data"]["m"].is_null());
    assert!(body["data"]["u"].is_null(), "a user shares no organization with bob");
    assert_eq!(body["data"]["nodes"], json!([null, null]));

    let update = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { organization { name } } }",
            json!({ "input": { "organizationId": org_id, "name": "Pwned" } }),
        )
        .await;
    assert_eq!(error_code(&update), "NOT_FOUND", "{update}");
    let delete = app
        .gql(
            Some(&bob.access_token),
            "mutation($input: DeleteOrganizationInput!) { deleteOrganization(input: $input) { deletedOrganizationId } }",
            json!({ "input": { "organizationId": org_id, "confirmSlug": "acme" } }),
        )
        .await;
    assert_eq!(error_code(&delete), "NOT_FOUND", "{delete}");
    let name = app
        .gql(
            Some(&ada.access_token),
            "{ organization(slug: \"acme\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(name["data"]["organization"]["name"], "Org acme");
    // Ada sees her own organization through node.
    let own = app
        .gql(
            Some(&ada.access_token),
            "query($id: ID!) { node(id: $id) { ... on Organization { slug } } }",
            json!({ "id": org_id }),
        )
        .await;
    assert_eq!(own["data"]["node"]["slug"], "acme");
    app.stop().await;
}
