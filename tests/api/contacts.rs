//! Subscriber contacts: addresses that receive the notification categories chosen for them
//! and nothing else, never users, members or key holders; managed with `contacts.manage`,
//! mailed by holders of a category's send key, and unsubscribed by the link in each mail
//! without signing in.
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, builtin_role, error_code, spawn_app};

const ADD: &str = "mutation($i: AddSubscriberContactInput!) { addSubscriberContact(input: $i) {
  subscriberContact { id email name categories } } }";
const SEND: &str = "mutation($i: SendNotificationInput!) { sendNotification(input: $i) { recipients } }";

async fn member_with_role(app: &TestApp, owner: &TestUser, org: &str, user: &TestUser, role: &str) {
    let membership = app.add_member(org, user).await;
    let body = app
        .change_role(owner, true, &membership, &builtin_role(role), None)
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// The newest unsubscribe token mailed to `recipient`, read from the outbox before delivery.
async fn mailed_token(app: &TestApp, recipient: &str) -> String {
    let store = app.store().await;
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            format!(
                "SELECT body, unsubscribe_url FROM mail_outbox WHERE recipient = '{recipient}' AND kind = 'notification' ORDER BY created_at, id"
            ),
        ),
    )
    .await
    .expect("outbox");
    store.close().await;
    let row = rows.last().unwrap_or_else(|| panic!("no notification to {recipient}"));
    let body: String = row.try_get("", "body").expect("body");
    let url: Option<String> = row.try_get("", "unsubscribe_url").expect("url");
    let url = url.expect("the mail carries its one-click address");
    assert!(body.contains(&url), "the link is in the text too: {body}");
    assert!(
        url.starts_with("https://guildhall.test/unsubscribe?token=ghu_"),
        "{url}"
    );
    url.split_once("token=").expect("token").1.to_owned()
}

async fn categories_of(app: &TestApp, token: &str, contact: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            "query($id: ID!) { node(id: $id) { ... on SubscriberContact { categories } } }",
            json!({ "id": contact }),
        )
        .await;
    body["data"]["node"]["categories"].clone()
}

fn form(body: String) -> (reqwest::header::HeaderName, &'static str, String) {
    (reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded", body)
}

async fn post_form(app: &TestApp, path: &str, body: String) -> (u16, String) {
    let (name, value, body) = form(body);
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header(name, value)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

#[tokio::test]
async fn contacts_receive_only_their_categories_and_unsubscribe_without_signing_in() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let uma = app.sign_up("uma@example.com", "Uma").await;
    let mel = app.sign_up("mel@example.com", "Mel").await;
    let bill = app.sign_up("bill@example.com", "Bill").await;
    let org = app.create_organization(&owner, "acme").await;
    member_with_role(&app, &owner, &org, &uma, "user_admin").await;
    member_with_role(&app, &owner, &org, &mel, "member").await;
    member_with_role(&app, &owner, &org, &bill, "billing_manager").await;

    // The categories are the catalog's.
    let categories = app
        .gql(None, "{ notificationCategories { id name sendKey } }", json!({}))
        .await;
    let ids: Vec<&str> = categories["data"]["notificationCategories"]
        .as_array()
        .unwrap_or_else(|| panic!("{categories}"))
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["accounting_documents", "balance_sheet", "payments"]);
    assert_eq!(
        categories["data"]["notificationCategories"][0]["sendKey"],
        "billing.manage"
    );

    let users_before = app.count_rows("users").await;
    let members_before = app.count_rows("memberships").await;
    let add = |email: &str, categories: Value| json!({ "i": { "organizationId": org, "email": email, "name": "Accounts", "categories": categories } });

    // A plain member may not keep the list; bad input is refused with its field; nothing is written.
    let refused = app
        .gql(
            Some(&mel.access_token),
            ADD,
            add("acc@client.example", json!(["payments"])),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    for (variables, field) in [
        (add("acc@client.example", json!(["newsletters"])), "categories"),
        (add("not an address", json!(["payments"])), "email"),
    ] {
        let body = app.gql(Some(&uma.access_token), ADD, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(app.count_rows("subscriber_contacts").await, 0);

    // A user administrator adds two contacts; categories come back in the catalog's order.
    let body = app
        .gql(
            Some(&uma.access_token),
            ADD,
            add(
                "Acc@Client.example",
                json!(["payments", "accounting_documents", "payments"]),
            ),
        )
        .await;
    let accounts = &body["data"]["addSubscriberContact"]["subscriberContact"];
    assert_eq!(
        accounts["categories"],
        json!(["accounting_documents", "payments"]),
        "{body}"
    );
    let accounts_id = accounts["id"].as_str().expect("id").to_owned();
    let body = app
        .gql(
            Some(&uma.access_token),
            ADD,
            add("bal@client.example", json!(["balance_sheet"])),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let again = app
        .gql(Some(&uma.access_token), ADD, add("acc@CLIENT.example", json!([])))
        .await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    assert_eq!(
        again["errors"][0]["extensions"]["existingId"],
        json!(accounts_id),
        "{again}"
    );

    // Contacts are no users and no members: nothing counts or lists them as such.
    assert_eq!(app.count_rows("users").await, users_before);
    assert_eq!(app.count_rows("memberships").await, members_before);
    let listed = app
        .gql(
            Some(&uma.access_token),
            "{ organization(slug: \"acme\") { members { totalCount nodes { user { email } } }
                subscriberContacts { totalCount nodes { email } }
                payments: subscriberContacts(category: \"payments\") { totalCount } } }",
            json!({}),
        )
        .await;
    let organization = &listed["data"]["organization"];
    assert_eq!(organization["members"]["totalCount"], members_before, "{listed}");
    assert!(
        !listed
            .to_string()
            .contains("\"user\":{\"email\":\"Acc@Client.example\"")
    );
    assert_eq!(organization["subscriberContacts"]["totalCount"], 2, "{listed}");
    assert_eq!(organization["payments"]["totalCount"], 1, "{listed}");
    let hidden = app
        .gql(
            Some(&mel.access_token),
            "{ organization(slug: \"acme\") { name subscriberContacts { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&hidden), "FORBIDDEN", "{hidden}");
    assert!(
        hidden["data"]["organization"]["subscriberContacts"].is_null(),
        "{hidden}"
    );
    assert!(hidden["data"]["organization"]["name"].is_string(), "{hidden}");

    // Sending needs the category's send key: a user administrator lacks `billing.manage`.
    let notice = |category: &str| json!({ "i": { "organizationId": org, "category": category, "subject": "Invoice 2026-11", "body": "Your invoice is attached." } });
    let body = app
        .gql(Some(&uma.access_token), SEND, notice("accounting_documents"))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app
        .gql(Some(&bill.access_token), SEND, notice("accounting_documents"))
        .await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 1, "{body}");
    let token = mailed_token(&app, "Acc@Client.example").await;

    // Delivered, the mail offers one-click unsubscribing to mail programs.
    let (port, received) = crate::mail::smtp_sink(0).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let from = "Guildhall <no-reply@guildhall.test>".parse().expect("from");
    assert_eq!(
        guildhall::domain::mailer::deliver_due(&app.app, &transport, &from)
            .await
            .expect("delivery"),
        1
    );
    let message = received.lock().expect("lock")[0].replace("=\n", "");
    assert!(
        message.contains("List-Unsubscribe: <https://guildhall.test/unsubscribe?token=ghu_"),
        "{message}"
    );
    assert!(
        message.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{message}"
    );

    // Opening the link changes nothing; it names what it would stop, with the names escaped.
    let renamed = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: UpdateOrganizationInput!) { updateOrganization(input: $i) { organization { name } } }",
            json!({ "i": { "organizationId": org, "name": "Acme <script>x</script>" } }),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    let page = app
        .client
        .get(format!("{}/unsubscribe?token={token}", app.address))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Accounting documents") && html.contains("Acc@Client.example"),
        "{html}"
    );
    assert!(
        html.contains("Acme &lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
    assert_eq!(
        categories_of(&app, &uma.access_token, &accounts_id).await,
        json!(["accounting_documents", "payments"])
    );

    // The page's button stops that category only; again, it changes nothing more.
    let events_before = app.count_rows("audit_events").await;
    let (status, html) = post_form(&app, "/unsubscribe", format!("token={token}&scope=category")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("no more Accounting documents mail"), "{html}");
    assert_eq!(
        categories_of(&app, &uma.access_token, &accounts_id).await,
        json!(["payments"])
    );
    assert_eq!(app.count_rows("audit_events").await, events_before + 1);
    let (status, _) = post_form(&app, "/unsubscribe", format!("token={token}&scope=category")).await;
    assert_eq!(status, 200);
    assert_eq!(app.count_rows("audit_events").await, events_before + 1);

    // Nothing of that category reaches the contact any more; the other one still does, and a
    // mail program's one-click request to its link (RFC 8058) stops it.
    let body = app
        .gql(Some(&bill.access_token), SEND, notice("accounting_documents"))
        .await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 0, "{body}");
    let body = app.gql(Some(&bill.access_token), SEND, notice("payments")).await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 1, "{body}");
    let payments_token = mailed_token(&app, "Acc@Client.example").await;
    assert_ne!(payments_token, token, "every mail has a link of its own");
    let (status, _) = post_form(
        &app,
        &format!("/unsubscribe?token={payments_token}"),
        "List-Unsubscribe=One-Click".to_owned(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(categories_of(&app, &uma.access_token, &accounts_id).await, json!([]));

    // The GraphQL form of the link, for a web app's own page, needs no sign-in either.
    let body = app
        .gql(
            None,
            "mutation($i: UnsubscribeInput!) { unsubscribe(input: $i) { email category everything } }",
            json!({ "i": { "token": payments_token, "everything": true } }),
        )
        .await;
    assert_eq!(
        body["data"]["unsubscribe"],
        json!({ "email": "Acc@Client.example", "category": "payments", "everything": true }),
        "{body}"
    );

    // A link naming nobody is a plain 404 page, and NOT_FOUND over GraphQL.
    let (status, _) = post_form(&app, "/unsubscribe", "token=ghu_made_up".to_owned()).await;
    assert_eq!(status, 404);
    let body = app
        .gql(
            None,
            "mutation($i: UnsubscribeInput!) { unsubscribe(input: $i) { email } }",
            json!({ "i": { "token": "ghu_made_up" } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // Having left everything, the address is not subscribed again by a manager; renaming is
    // fine. Then removing: a removed contact's links name nobody.
    let update = "mutation($i: UpdateSubscriberContactInput!) { updateSubscriberContact(input: $i) { subscriberContact { name categories } } }";
    let body = app
        .gql(
            Some(&uma.access_token),
            update,
            json!({ "i": { "contactId": accounts_id, "categories": ["balance_sheet"] } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app
        .gql(
            Some(&uma.access_token),
            update,
            json!({ "i": { "contactId": accounts_id, "name": "" } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateSubscriberContact"]["subscriberContact"],
        json!({ "name": null, "categories": [] }),
        "{body}"
    );
    let body = app
        .gql(
            Some(&uma.access_token),
            "mutation($i: RemoveSubscriberContactInput!) { removeSubscriberContact(input: $i) { removedContactId } }",
            json!({ "i": { "contactId": accounts_id } }),
        )
        .await;
    assert_eq!(
        body["data"]["removeSubscriberContact"]["removedContactId"],
        json!(accounts_id),
        "{body}"
    );
    let gone = app
        .client
        .get(format!("{}/unsubscribe?token={token}", app.address))
        .send()
        .await
        .expect("page");
    assert_eq!(gone.status().as_u16(), 404);
    assert_eq!(app.count_rows("unsubscribe_links").await, 0);

    let log = app
        .gql(
            Some(&owner.access_token),
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
        "contact.add",
        "contact.update",
        "contact.remove",
        "contact.unsubscribe",
        "notification.send",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    app.stop().await;
}

/// Another organization's managers cannot see or touch a contact, and two managers adding the
/// same address at once leave one contact.
#[tokio::test]
async fn contacts_stay_inside_their_organization_and_concurrent_adds_keep_one() {
    let app = spawn_app().await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let other = app.sign_up("other@example.com", "Other").await;
    let uma = app.sign_up("uma@example.com", "Uma").await;
    let org = app.create_organization(&owner, "acme").await;
    let other_org = app.create_organization(&other, "globex").await;
    member_with_role(&app, &owner, &org, &uma, "user_admin").await;

    let add = |token: String| {
        let app = &app;
        let org = org.clone();
        async move {
            app.gql(
                Some(&token),
                ADD,
                json!({ "i": { "organizationId": org, "email": "acc@client.example", "categories": ["payments"] } }),
            )
            .await
        }
    };
    let (a, b) = tokio::join!(add(owner.access_token.clone()), add(uma.access_token.clone()));
    let mut codes = [error_code(&a), error_code(&b)];
    codes.sort();
    assert_eq!(codes, [String::new(), "CONFLICT".to_owned()], "{a} {b}");
    assert_eq!(app.count_rows("subscriber_contacts").await, 1);
    let contact = [&a, &b]
        .iter()
        .find_map(|r| r["data"]["addSubscriberContact"]["subscriberContact"]["id"].as_str())
        .expect("one was added")
        .to_owned();

    // The owner of another organization: the contact does not exist for them.
    let seen = app
        .gql(
            Some(&other.access_token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": contact }),
        )
        .await;
    assert!(seen["data"]["node"].is_null(), "{seen}");
    for (mutation, input) in [
        (
            "mutation($i: UpdateSubscriberContactInput!) { updateSubscriberContact(input: $i) { subscriberContact { id } } }",
            json!({ "contactId": contact, "categories": [] }),
        ),
        (
            "mutation($i: RemoveSubscriberContactInput!) { removeSubscriberContact(input: $i) { removedContactId } }",
            json!({ "contactId": contact }),
        ),
    ] {
        let body = app
            .gql(Some(&other.access_token), mutation, json!({ "i": input }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
    // Nor can they mail this organization's contacts.
    let body = app
        .gql(
            Some(&other.access_token),
            SEND,
            json!({ "i": { "organizationId": org, "category": "payments", "subject": "Pay now", "body": "..." } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Their own organization has no contacts to mail.
    let body = app
        .gql(
            Some(&other.access_token),
            SEND,
            json!({ "i": { "organizationId": other_org, "category": "payments", "subject": "Pay now", "body": "..." } }),
        )
        .await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 0, "{body}");
    // A subject is one line: no header can be smuggled into a mail.
    let body = app
        .gql(
            Some(&owner.access_token),
            SEND,
            json!({ "i": { "organizationId": org, "category": "payments", "subject": "Hi\r\nBcc: all@example.com", "body": "..." } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "subject");
    assert_eq!(
        categories_of(&app, &uma.access_token, &contact).await,
        json!(["payments"]),
        "nothing changed"
    );
    app.stop().await;
}

async fn outbox_to(app: &TestApp, recipient: &str) -> i64 {
    let store = app.store().await;
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &store.conn,
        sea_orm::Statement::from_string(
            store.backend(),
            format!("SELECT COUNT(*) AS n FROM mail_outbox WHERE recipient = '{recipient}' AND kind = 'notification'"),
        ),
    )
    .await
    .expect("count")
    .expect("row");
    store.close().await;
    row.try_get("", "n").expect("n")
}

/// Leaving lasts: the address cannot be put back on the category by a manager (not by an
/// update, not by removing and adding it again), and its mail still queued is not sent. Sends
/// stay within the organization's daily quota. Tokens keep to their organization and keychain.
#[tokio::test]
async fn unsubscribing_lasts_and_stops_queued_mail_and_sends_keep_a_daily_quota() {
    let mut args = crate::helpers::test_args(&crate::helpers::fresh_database_url().await);
    args.notifications_per_day = 3;
    let app = crate::helpers::spawn_with(args).await;
    let owner = app.sign_up("owner@example.com", "Owner").await;
    let org = app.create_organization(&owner, "acme").await;
    let other_org = app.create_organization(&owner, "globex").await;
    let mut ids = Vec::new();
    for email in ["a@client.example", "b@client.example"] {
        let body = app
            .gql(
                Some(&owner.access_token),
                ADD,
                json!({ "i": { "organizationId": org, "email": email, "categories": ["payments"] } }),
            )
            .await;
        ids.push(
            body["data"]["addSubscriberContact"]["subscriberContact"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned(),
        );
    }
    let notice =
        json!({ "i": { "organizationId": org, "category": "payments", "subject": "Paid", "body": "Thank you." } });
    let body = app.gql(Some(&owner.access_token), SEND, notice.clone()).await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 2, "{body}");

    // A mail program's one-click request, multipart as in RFC 8058's example.
    let token = mailed_token(&app, "a@client.example").await;
    let response = app
        .client
        .post(format!("{}/unsubscribe?token={token}", app.address))
        .header(reqwest::header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
        .body("--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n")
        .send()
        .await
        .expect("one-click");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        outbox_to(&app, "a@client.example").await,
        0,
        "the queued mail is not sent"
    );
    assert_eq!(outbox_to(&app, "b@client.example").await, 1);

    // Nobody subscribes the address again on its behalf.
    let update = "mutation($i: UpdateSubscriberContactInput!) { updateSubscriberContact(input: $i) { subscriberContact { categories } } }";
    let body = app
        .gql(
            Some(&owner.access_token),
            update,
            json!({ "i": { "contactId": ids[0], "categories": ["payments"] } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app
        .gql(
            Some(&owner.access_token),
            "mutation($i: RemoveSubscriberContactInput!) { removeSubscriberContact(input: $i) { removedContactId } }",
            json!({ "i": { "contactId": ids[0] } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let readd = |categories: Value| json!({ "i": { "organizationId": org, "email": "A@client.example", "categories": categories } });
    let body = app
        .gql(Some(&owner.access_token), ADD, readd(json!(["payments"])))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unsubscribed"),
        "{body}"
    );
    let body = app
        .gql(Some(&owner.access_token), ADD, readd(json!(["balance_sheet"])))
        .await;
    assert!(body["errors"].is_null(), "other categories are a new choice: {body}");
    // Another organization's list is another list.
    let body = app
        .gql(
            Some(&owner.access_token),
            ADD,
            json!({ "i": { "organizationId": other_org, "email": "a@client.example", "categories": ["payments"] } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    // The quota: 2 sent, 1 more fits, then nothing; a refused send queues nothing.
    let body = app.gql(Some(&owner.access_token), SEND, notice.clone()).await;
    assert_eq!(body["data"]["sendNotification"]["recipients"], 1, "{body}");
    let queued = app.count_rows("mail_outbox").await;
    let body = app.gql(Some(&owner.access_token), SEND, notice.clone()).await;
    assert_eq!(error_code(&body), "LIMIT_EXCEEDED", "{body}");
    assert_eq!(app.count_rows("mail_outbox").await, queued);
    let body = app
        .gql(
            Some(&owner.access_token),
            SEND,
            json!({ "i": { "organizationId": other_org, "category": "payments", "subject": "Paid", "body": "Thanks." } }),
        )
        .await;
    assert_eq!(
        body["data"]["sendNotification"]["recipients"], 1,
        "each organization has its own: {body}"
    );

    // A token confined to the other organization, and one whose keychain only reads.
    let mint = |input: Value| {
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            let body = app
                .gql(
                    Some(&token),
                    "mutation($i: CreateApiTokenInput!) { createApiToken(input: $i) { token } }",
                    json!({ "i": input }),
                )
                .await;
            body["data"]["createApiToken"]["token"]
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned()
        }
    };
    let confined = mint(json!({ "name": "globex only", "organizationId": other_org })).await;
    let reader = mint(
        json!({ "name": "reader", "organizationId": org, "keychainId": crate::helpers::builtin_keychain("read_only") }),
    )
    .await;
    let add_c = json!({ "i": { "organizationId": org, "email": "c@client.example", "categories": ["payments"] } });
    let body = app.gql(Some(&confined), ADD, add_c.clone()).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = app.gql(Some(&reader), ADD, add_c).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let listed = app
        .gql(
            Some(&reader),
            "{ organization(slug: \"acme\") { subscriberContacts { totalCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["data"]["organization"]["subscriberContacts"]["totalCount"], 2,
        "{listed}"
    );
    app.stop().await;
}
