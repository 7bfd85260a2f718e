//! Live updates over a real websocket (`graphql-transport-ws`): access changes and audit events
//! arrive as they happen, from this process or another, and a subscription ends when its
//! subscriber loses the access or the credential it was opened with.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{
    TestApp, TestUser, builtin_role, error_code, fresh_database_url, spawn_app, spawn_with, test_args,
};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const ACCESS: &str = "subscription($id: ID!) { viewerAccessChanged(organizationId: $id) { organizationId member keys workspaces { workspaceId keys } } }";
const EVENTS: &str = "subscription($id: ID!) { organizationEvents(organizationId: $id) { action actor { name } } }";
/// Longest a message may take to arrive: far above the change poll interval.
const WAIT: Duration = Duration::from_secs(10);

/// Opens a connection and sends `connection_init` with the bearer token (if any).
async fn connect(app: &TestApp, token: Option<&str>) -> Socket {
    let url = format!("{}/graphql", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    let payload = match token {
        Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
        None => json!({}),
    };
    send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next protocol message (pings answered), or `None` when the connection closed; the
/// close code comes as `{"type": "closed", "code": ...}`.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")?;
        match message.expect("message") {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if value["type"] == "ping" {
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(value);
            }
            Message::Close(frame) => {
                return Some(json!({ "type": "closed", "code": frame.map(|f| u16::from(f.code)) }));
            }
            _ => continue,
        }
    }
}

async fn signed_in(app: &TestApp, user: &TestUser) -> Socket {
    let mut socket = connect(app, Some(&user.access_token)).await;
    assert_eq!(next(&mut socket).await.expect("ack")["type"], "connection_ack");
    socket
}

async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
}

/// The next `next` payload of subscription `id` (other messages must not come first).
async fn data(socket: &mut Socket, id: &str) -> Value {
    let message = next(socket).await.expect("open");
    assert_eq!(message["id"], id, "{message}");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"].clone()
}

/// Makes changes through `through` until subscription `id` reports one: a subscription has no
/// acknowledgement of its own, so this is how a test knows it is listening. Returns the event.
async fn until_listening(
    through: &TestApp,
    actor: &TestUser,
    organization: &str,
    socket: &mut Socket,
    id: &str,
) -> Value {
    for attempt in 0..20 {
        through
            .create_workspace(actor, organization, &format!("probe-{id}-{attempt}"))
            .await;
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(500), next(socket)).await {
            assert_eq!(message["type"], "next", "{message}");
            return message["payload"].clone();
        }
    }
    panic!("subscription {id} never reported a change");
}

fn keys(payload: &Value) -> Vec<String> {
    payload["data"]["viewerAccessChanged"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key").to_owned())
        .collect()
}

#[tokio::test]
async fn access_changes_arrive_as_grants_and_revokes_happen_and_removal_ends_the_stream() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let organization = app.create_organization(&ada, "acme").await;
    let membership = app.add_member(&organization, &bob).await;

    let mut socket = signed_in(&app, &bob).await;
    subscribe(&mut socket, "a", ACCESS, json!({ "id": organization })).await;
    let first = data(&mut socket, "a").await;
    assert_eq!(first["data"]["viewerAccessChanged"]["member"], true, "{first}");
    assert!(!keys(&first).contains(&"members.invite".to_owned()), "{first}");

    let granted = app
        .change_role(&ada, true, &membership, &builtin_role("admin"), None)
        .await;
    assert!(granted["errors"].is_null(), "{granted}");
    let after_grant = data(&mut socket, "a").await;
    assert!(
        keys(&after_grant).contains(&"members.invite".to_owned()),
        "{after_grant}"
    );

    // A change that leaves Bob's keys as they are sends nothing; the revoke that follows does.
    app.create_workspace(&ada, &organization, "web").await;
    app.change_role(&ada, false, &membership, &builtin_role("admin"), None)
        .await;
    let after_revoke = data(&mut socket, "a").await;
    assert_eq!(keys(&after_revoke), keys(&first), "{after_revoke}");

    let removed = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: RemoveMemberInput!) { removeMember(input: $input) { __typename } }",
            json!({ "input": { "membershipId": membership } }),
        )
        .await;
    assert!(removed["errors"].is_null(), "{removed}");
    let last = data(&mut socket, "a").await;
    assert_eq!(last["data"]["viewerAccessChanged"]["member"], false, "{last}");
    assert_eq!(keys(&last), Vec::<String>::new());
    let complete = next(&mut socket).await.expect("complete");
    assert_eq!(complete["type"], "complete", "{complete}");
    app.stop().await;
}

#[tokio::test]
async fn audit_events_stream_to_holders_of_audit_read_until_they_lose_it() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let eve = app.sign_up("eve@example.com", "Eve").await;
    let organization = app.create_organization(&ada, "acme").await;
    let membership = app.add_member(&organization, &bob).await;

    // A member without `audit.read`, and someone who is not a member, are refused at once.
    let mut plain = signed_in(&app, &bob).await;
    subscribe(&mut plain, "e", EVENTS, json!({ "id": organization })).await;
    let refused = data(&mut plain, "e").await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert!(refused["data"].is_null(), "{refused}");
    assert_eq!(next(&mut plain).await.expect("complete")["type"], "complete");
    let mut stranger = signed_in(&app, &eve).await;
    subscribe(&mut stranger, "e", EVENTS, json!({ "id": organization })).await;
    let refused = data(&mut stranger, "e").await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");

    app.change_role(&ada, true, &membership, &builtin_role("admin"), None)
        .await;
    let mut socket = signed_in(&app, &bob).await;
    subscribe(&mut socket, "e", EVENTS, json!({ "id": organization })).await;
    let event = until_listening(&app, &ada, &organization, &mut socket, "e").await;
    assert_eq!(
        event["data"]["organizationEvents"]["action"], "workspace.create",
        "{event}"
    );
    assert_eq!(event["data"]["organizationEvents"]["actor"]["name"], "Ada", "{event}");

    // Losing the key ends the stream with FORBIDDEN (after the revoke's own event).
    app.change_role(&ada, false, &membership, &builtin_role("admin"), None)
        .await;
    let mut ended = None;
    for _ in 0..25 {
        let message = next(&mut socket).await.expect("message");
        if message["type"] == "next" && message["payload"]["errors"].is_array() {
            ended = Some(message);
            break;
        }
    }
    let ended = ended.expect("the stream ends with an error");
    assert_eq!(error_code(&ended["payload"]), "FORBIDDEN", "{ended}");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    app.stop().await;
}

#[tokio::test]
async fn the_websocket_refuses_bad_credentials_mutations_and_costly_operations() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let organization = app.create_organization(&ada, "acme").await;

    let mut forged = connect(&app, Some("not-a-token")).await;
    // No acknowledgement: the connection is closed instead.
    let closed = next(&mut forged).await;
    assert!(closed.as_ref().is_none_or(|m| m["type"] == "closed"), "{closed:?}");

    // Anonymous connections may open but subscribe to nothing.
    let mut anonymous = connect(&app, None).await;
    assert_eq!(next(&mut anonymous).await.expect("ack")["type"], "connection_ack");
    subscribe(&mut anonymous, "a", ACCESS, json!({ "id": organization })).await;
    let refused = data(&mut anonymous, "a").await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");

    let mut socket = signed_in(&app, &ada).await;
    subscribe(
        &mut socket,
        "m",
        r#"mutation { createOrganization(input: { name: "Via socket", slug: "via-socket" }) { organization { id } } }"#,
        json!({}),
    )
    .await;
    let refused = data(&mut socket, "m").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    assert_eq!(app.count_rows("organizations").await, 1);

    let nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    subscribe(&mut socket, "q", nested, json!({})).await;
    let refused = data(&mut socket, "q").await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");

    // Queries go over HTTP too: the socket carries subscriptions, one root field each.
    subscribe(&mut socket, "v", "{ viewer { name } }", json!({})).await;
    assert_eq!(error_code(&data(&mut socket, "v").await), "BAD_USER_INPUT");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    // Fragments that spread each other twice are priced (and refused) in the document's length.
    let mut bomb = String::from("subscription { ...F0 }");
    for i in 0..40 {
        bomb.push_str(&format!(
            " fragment F{i} on Subscription {{ ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    bomb.push_str(" fragment F40 on Subscription { viewerAccessChanged(organizationId: \"x\") { member } }");
    subscribe(&mut socket, "f", &bomb, json!({})).await;
    assert_eq!(error_code(&data(&mut socket, "f").await), "BAD_USER_INPUT");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    let twice = "subscription($id: ID!) { a: viewerAccessChanged(organizationId: $id) { member } b: viewerAccessChanged(organizationId: $id) { member } }";
    subscribe(&mut socket, "t", twice, json!({ "id": organization })).await;
    assert_eq!(error_code(&data(&mut socket, "t").await), "BAD_USER_INPUT");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_api_token_ends_its_subscriptions() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let organization = app.create_organization(&ada, "acme").await;
    let created = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id } } }",
            json!({ "input": { "name": "live", "organizationId": organization } }),
        )
        .await;
    let token = created["data"]["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let token_id = created["data"]["createApiToken"]["apiToken"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let mut socket = connect(&app, Some(&token)).await;
    assert_eq!(next(&mut socket).await.expect("ack")["type"], "connection_ack");
    subscribe(&mut socket, "a", ACCESS, json!({ "id": organization })).await;
    assert_eq!(
        data(&mut socket, "a").await["data"]["viewerAccessChanged"]["member"],
        true
    );

    let revoked = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) { __typename } }",
            json!({ "input": { "apiTokenId": token_id } }),
        )
        .await;
    assert!(revoked["errors"].is_null(), "{revoked}");
    let ended = data(&mut socket, "a").await;
    assert_eq!(error_code(&ended), "UNAUTHENTICATED", "{ended}");
    assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    // The connection's sign-in does not outlive the token: nothing new opens on it.
    subscribe(&mut socket, "b", ACCESS, json!({ "id": organization })).await;
    assert_eq!(error_code(&data(&mut socket, "b").await), "UNAUTHENTICATED");
    app.stop().await;
}

/// Two server processes over one database: a change made through one reaches a subscriber of
/// the other (on SQLite through the shared file, on PostgreSQL through the change clock).
#[tokio::test]
async fn changes_made_through_another_process_reach_subscribers() {
    let database_url = fresh_database_url().await;
    let one = spawn_with(test_args(&database_url)).await;
    let two = spawn_with(test_args(&database_url)).await;
    let ada = one.sign_up("ada@example.com", "Ada").await;
    let bob = one.sign_up("bob@example.com", "Bob").await;
    let organization = one.create_organization(&ada, "acme").await;
    let membership = one.add_member(&organization, &bob).await;

    let mut access = signed_in(&two, &bob).await;
    subscribe(&mut access, "a", ACCESS, json!({ "id": organization })).await;
    let first = data(&mut access, "a").await;
    let mut events = signed_in(&two, &ada).await;
    subscribe(&mut events, "e", EVENTS, json!({ "id": organization })).await;
    until_listening(&one, &ada, &organization, &mut events, "e").await;
    // Each probe was a change, but not to Bob's keys: nothing came for him.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next(&mut access))
            .await
            .is_err()
    );

    let granted = one
        .change_role(&ada, true, &membership, &builtin_role("admin"), None)
        .await;
    assert!(granted["errors"].is_null(), "{granted}");
    let changed = data(&mut access, "a").await;
    assert_ne!(keys(&changed), keys(&first), "{changed}");
    // Late probe events may come first.
    let mut actions = Vec::new();
    while !actions.contains(&"role.grant".to_owned()) {
        let event = data(&mut events, "e").await;
        actions.push(
            event["data"]["organizationEvents"]["action"]
                .as_str()
                .expect("action")
                .to_owned(),
        );
        assert!(actions.len() < 25, "{actions:?}");
    }
    one.stop().await;
    two.stop().await;
}

/// A token confined to one organization subscribes to nothing of another, its own user's
/// organizations included.
#[tokio::test]
async fn a_confined_token_subscribes_to_nothing_outside_its_organization() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let acme = app.create_organization(&ada, "acme").await;
    let other = app.create_organization(&ada, "other").await;
    let created = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }",
            json!({ "input": { "name": "confined", "organizationId": acme } }),
        )
        .await;
    let token = created["data"]["createApiToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut socket = connect(&app, Some(&token)).await;
    assert_eq!(next(&mut socket).await.expect("ack")["type"], "connection_ack");
    for (id, query) in [("a", ACCESS), ("e", EVENTS)] {
        subscribe(&mut socket, id, query, json!({ "id": other })).await;
        assert_eq!(error_code(&data(&mut socket, id).await), "NOT_FOUND", "{id}");
        assert_eq!(next(&mut socket).await.expect("complete")["type"], "complete");
    }
    subscribe(&mut socket, "ok", ACCESS, json!({ "id": acme })).await;
    assert_eq!(
        data(&mut socket, "ok").await["data"]["viewerAccessChanged"]["member"],
        true
    );
    app.stop().await;
}

/// The operators see live subscriptions and websockets come and go.
#[tokio::test]
async fn active_subscriptions_and_open_websockets_are_counted() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let organization = app.create_organization(&ada, "acme").await;
    let gauge = |text: &str, name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let mut socket = signed_in(&app, &ada).await;
    subscribe(&mut socket, "a", ACCESS, json!({ "id": organization })).await;
    data(&mut socket, "a").await;
    let open = app.scrape().await;
    assert_eq!(gauge(&open, "guildhall_subscriptions_active"), "1");
    assert_eq!(gauge(&open, "guildhall_websocket_connections"), "1");

    send(&mut socket, json!({ "id": "a", "type": "complete" })).await;
    socket.close(None).await.expect("close");
    drop(socket);
    // The server notices the close on its own schedule: wait for the gauges to come down.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = app.scrape().await;
        if gauge(&text, "guildhall_subscriptions_active") == "0"
            && gauge(&text, "guildhall_websocket_connections") == "0"
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "gauges stayed up:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

/// With `--listen-database-url`, a commit made through another process reaches a subscriber at
/// once, though this process would not poll the change clock for ten minutes; the listener's
/// state and the announcements it heard are in the metrics. PostgreSQL only.
#[tokio::test]
async fn announcements_on_a_listening_connection_reach_subscribers_without_polling() {
    let database_url = fresh_database_url().await;
    if !database_url.starts_with("postgres") {
        return;
    }
    let one = spawn_with(test_args(&database_url)).await;
    let mut args = test_args(&database_url);
    args.change_poll_ms = 600_000;
    args.listen_database_url = Some(database_url.clone());
    let two = spawn_with(args).await;
    let ada = one.sign_up("ada@example.com", "Ada").await;
    let bob = one.sign_up("bob@example.com", "Bob").await;
    let organization = one.create_organization(&ada, "acme").await;
    let membership = one.add_member(&organization, &bob).await;
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let deadline = std::time::Instant::now() + WAIT;
    while value(&two.scrape().await, "guildhall_change_listener_connected") != 1.0 {
        assert!(std::time::Instant::now() < deadline, "the listener never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut access = signed_in(&two, &bob).await;
    subscribe(&mut access, "a", ACCESS, json!({ "id": organization })).await;
    let first = data(&mut access, "a").await;
    // The setup's own announcements may still be arriving: count from once they have.
    let mut heard = value(&two.scrape().await, "guildhall_change_listener_notifications_total");
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = value(&two.scrape().await, "guildhall_change_listener_notifications_total");
        if now == heard {
            break;
        }
        heard = now;
    }
    let granted = one
        .change_role(&ada, true, &membership, &builtin_role("admin"), None)
        .await;
    assert!(granted["errors"].is_null(), "{granted}");
    let started = std::time::Instant::now();
    let changed = data(&mut access, "a").await;
    let took = started.elapsed();
    assert_ne!(keys(&changed), keys(&first), "{changed}");
    // Without the announcement the change would come at the subscription's own check of its
    // access, every 5 s, or at the ten-minute poll.
    assert!(
        took < Duration::from_secs(4),
        "the change took {took:?}: it was not announced"
    );
    assert!(
        value(&two.scrape().await, "guildhall_change_listener_notifications_total") > heard,
        "the change came without an announcement"
    );
    println!("a grant made through another process reached the subscriber in {took:?}");
    one.stop().await;
    two.stop().await;
}

/// A listening URL on SQLite, or one that is not PostgreSQL's, is refused at start.
#[tokio::test]
async fn a_listening_url_needs_postgresql() {
    let database_url = fresh_database_url().await;
    let mut args = test_args(&database_url);
    args.listen_database_url = Some("mysql://localhost/guildhall".to_owned());
    let refused = guildhall::server::build(&args).await.err().expect("refused");
    assert!(refused.to_string().contains("PostgreSQL"), "{refused}");
    if database_url.starts_with("sqlite") {
        args.listen_database_url = Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let refused = guildhall::server::build(&args).await.err().expect("refused");
        assert!(refused.to_string().contains("PostgreSQL"), "{refused}");
    }
}

/// Commits are announced only once a server that listens has started: until then no write pays
/// for PostgreSQL's notification lock. PostgreSQL only.
#[tokio::test]
async fn commits_are_announced_only_once_a_listening_server_started() {
    let database_url = fresh_database_url().await;
    if !database_url.starts_with("postgres") {
        return;
    }
    let plain = spawn_with(test_args(&database_url)).await;
    let ada = plain.sign_up("ada@example.com", "Ada").await;
    let organization = plain.create_organization(&ada, "acme").await;
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(&database_url)
        .await
        .expect("listen");
    listener.listen(migration::CHANGE_CHANNEL).await.expect("listen");
    plain.create_workspace(&ada, &organization, "quiet").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), listener.recv())
            .await
            .is_err(),
        "a commit was announced though no server listens"
    );

    let mut args = test_args(&database_url);
    args.listen_database_url = Some(database_url.clone());
    let listening = spawn_with(args).await;
    plain.create_workspace(&ada, &organization, "heard").await;
    let heard = tokio::time::timeout(WAIT, listener.recv()).await;
    assert!(matches!(heard, Ok(Ok(_))), "{heard:?}");
    plain.stop().await;
    listening.stop().await;
}

#[tokio::test]
async fn joining_leaving_and_a_teams_role_change_reach_the_members_stream() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let bob = app.sign_up("bob@example.com", "Bob").await;
    let organization = app.create_organization(&ada, "acme").await;
    let membership = app.add_member(&organization, &bob).await;
    let team = app
        .gql(
            Some(&ada.access_token),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id } } }",
            json!({ "i": { "organizationId": organization, "name": "people" } }),
        )
        .await["data"]["createTeam"]["team"]["id"]
        .as_str()
        .expect("team")
        .to_owned();
    let mut socket = signed_in(&app, &bob).await;
    subscribe(&mut socket, "t", ACCESS, json!({ "id": organization })).await;
    let first = data(&mut socket, "t").await;
    assert!(!keys(&first).contains(&"members.invite".to_owned()), "{first}");

    let change = |query: &'static str, input: Value| {
        let (app, token) = (&app, ada.access_token.clone());
        async move {
            let body = app.gql(Some(&token), query, json!({ "i": input })).await;
            assert!(body["errors"].is_null(), "{body}");
        }
    };
    // Joining a team that holds nothing changes no key: nothing is sent; the team's grant is.
    change(
        "mutation($i: AddTeamMemberInput!) { addTeamMember(input: $i) { team { id } } }",
        json!({ "teamId": team, "membershipId": membership }),
    )
    .await;
    change(
        "mutation($i: GrantTeamRoleInput!) { grantTeamRole(input: $i) { team { id } } }",
        json!({ "teamId": team, "roleId": builtin_role("user_admin") }),
    )
    .await;
    let granted = data(&mut socket, "t").await;
    assert!(keys(&granted).contains(&"members.invite".to_owned()), "{granted}");
    // Taken out of the team: the keys go.
    change(
        "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) { team { id } } }",
        json!({ "teamId": team, "membershipId": membership }),
    )
    .await;
    let left = data(&mut socket, "t").await;
    assert_eq!(keys(&left), keys(&first), "{left}");
    app.stop().await;
}
