//! Mail delivery against a real SMTP conversation on a local port: failures are retried with
//! backoff and the message is never lost.
use std::sync::{Arc, Mutex};

use lettre::{AsyncSmtpTransport, Tokio1Executor};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::spawn_app;

/// A minimal SMTP server: refuses the first `refusals` messages with 451, stores the rest.
pub(crate) async fn smtp_sink(refusals: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        let mut refused = 0;
        while let Ok((socket, _)) = listener.accept().await {
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 sink ready\r\n").await;
            let mut in_data = false;
            let mut message = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if in_data {
                    if line == "." {
                        in_data = false;
                        if refused < refusals {
                            refused += 1;
                            let _ = write.write_all(b"451 try again later\r\n").await;
                        } else {
                            store.lock().expect("lock").push(std::mem::take(&mut message));
                            let _ = write.write_all(b"250 queued\r\n").await;
                        }
                        message.clear();
                    } else {
                        message.push_str(&line);
                        message.push('\n');
                    }
                    continue;
                }
                let verb = line.split_whitespace().next().unwrap_or_default().to_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 sink\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = write.write_all(reply).await;
            }
        }
    });
    (port, received)
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_and_links_are_redacted_once_sent() {
    let app = spawn_app().await;
    let ada = app.sign_up("ada@example.com", "Ada").await;
    let org = app.create_organization(&ada, "acme").await;
    let body = app
        .gql(
            Some(&ada.access_token),
            "mutation($input: InviteMemberInput!) { inviteMember(input: $input) { acceptUrl } }",
            json!({ "input": { "organizationId": org, "email": "bob@example.com" } }),
        )
        .await;
    let url = body["data"]["inviteMember"]["acceptUrl"]
        .as_str()
        .expect("url")
        .to_owned();
    let (port, received) = smtp_sink(1).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let from = "Guildhall <no-reply@guildhall.test>".parse().expect("from");
    let deliver = || guildhall::domain::mailer::deliver_due(&app.app, &transport, &from);

    assert_eq!(
        deliver().await.expect("round"),
        0,
        "the server refuses the first attempt"
    );
    assert_eq!(
        deliver().await.expect("round"),
        0,
        "not due again before the backoff passes"
    );
    assert!(received.lock().expect("lock").is_empty());
    app.app.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(deliver().await.expect("round"), 1);
    let messages = received.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Join Org acme on Guildhall"), "{}", messages[0]);
    assert!(
        messages[0]
            .replace("=\n", "")
            .contains(url.split_once("token=").expect("token").1)
    );

    let store = app.store().await;
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &store.conn,
        sea_orm::Statement::from_string(store.backend(), "SELECT attempts, body, last_error FROM mail_outbox"),
    )
    .await
    .expect("query")
    .expect("row");
    store.close().await;
    let attempts: i32 = row.try_get("", "attempts").expect("attempts");
    let stored: String = row.try_get("", "body").expect("body");
    let last_error: Option<String> = row.try_get("", "last_error").expect("error");
    assert_eq!(attempts, 2);
    assert!(last_error.expect("the failure is recorded").contains("451"));
    assert!(
        stored.contains("token=<redacted>") && !stored.contains("ghi_"),
        "{stored}"
    );
    assert_eq!(deliver().await.expect("round"), 0, "a sent message is never sent again");
    app.stop().await;
}
