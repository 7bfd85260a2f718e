//! `guildhall demo`: an organization to click through in GraphiQL within a minute. Everything is
//! made through the same domain services the API uses, so the audit log tells how it came to be.
use uuid::Uuid;

use crate::authz::RoleScope;
use crate::domain::accounts::{self, SignUp};
use crate::domain::api_tokens::{self, TokenSpec};
use crate::domain::definitions::{self, KeychainInput, RoleInput};
use crate::domain::invitations::{self, Offer};
use crate::domain::organizations::{self, CreateOrganization};
use crate::domain::workspaces::{self, CreateWorkspace};
use crate::domain::{App, DomainResult, Principal, RequestMeta, bindings, builtins, members};

/// Every demo person's password.
pub const PASSWORD: &str = "guildhall-demo-password";
/// The demo organization's slug.
pub const SLUG: &str = "acme-demo";

/// Who can sign in, and the service account's token.
pub struct Seeded {
    /// (name, email, what they hold).
    pub people: Vec<(String, String, String)>,
    pub service_account_token: String,
    pub invited: String,
}

/// The people of the demo: a name, an email, a built-in role and the workspace it applies in.
const PEOPLE: [(&str, &str, &str, Option<&str>); 7] = [
    ("Ben Admin", "ben@acme.example", "admin", None),
    ("Bea Billing", "bea@acme.example", "billing_manager", None),
    ("Uma Useradmin", "uma@acme.example", "user_admin", None),
    ("Vic Viewer", "vic@acme.example", "viewer", None),
    ("Mo Member", "mo@acme.example", "member", None),
    ("Wes Webadmin", "wes@acme.example", "workspace_admin", Some("web")),
    (
        "Maya Mobileviewer",
        "maya@acme.example",
        "workspace_viewer",
        Some("mobile"),
    ),
];

async fn person(app: &App, meta: &RequestMeta, name: &str, email: &str) -> DomainResult<Principal> {
    // The operator seeds these accounts: their addresses count as verified.
    let prepared = accounts::prepare_sign_up(
        app,
        SignUp {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
            name: name.to_owned(),
        },
    )
    .await?;
    let tx = app.store.begin_write().await?;
    let credentials = accounts::sign_up_in(&tx, app, meta, prepared).await?;
    tx.commit().await?;
    accounts::authenticate(app, &credentials.access_token).await
}

/// Seeds the demo organization. Fails with CONFLICT when it is already there.
pub async fn seed(app: &App) -> DomainResult<Seeded> {
    let meta = RequestMeta {
        request_id: "demo".to_owned(),
        client_address: Some("127.0.0.1".to_owned()),
        user_agent: Some("guildhall demo".to_owned()),
    };
    let owner = person(app, &meta, "Olivia Owner", "olivia@acme.example").await?;
    let (organization, _) = organizations::create(
        app,
        &meta,
        &owner,
        CreateOrganization {
            name: "Acme Robotics".to_owned(),
            slug: SLUG.to_owned(),
        },
    )
    .await?;
    let mut workspace_ids = std::collections::HashMap::new();
    for (slug, name, description) in [
        ("web", "Web shop", "The storefront and its API."),
        ("mobile", "Mobile apps", "The iOS and Android apps' backends."),
        ("infra", "Infrastructure", "Build servers, databases and the network."),
    ] {
        let workspace = workspaces::create(
            app,
            &meta,
            &owner,
            CreateWorkspace {
                organization_id: organization.id,
                name: name.to_owned(),
                slug: slug.to_owned(),
                description: Some(description.to_owned()),
            },
        )
        .await?;
        workspace_ids.insert(slug, workspace.id);
    }
    let keychain = definitions::create_keychain(
        app,
        &meta,
        &owner,
        organization.id,
        KeychainInput {
            name: Some("deployers".to_owned()),
            description: Some("Rolling out releases: restarting servers and restoring backups.".to_owned()),
            keys: Some(vec![
                "servers.read".to_owned(),
                "servers.power".to_owned(),
                "backups.read".to_owned(),
                "backups.restore".to_owned(),
            ]),
        },
    )
    .await?;
    let release_manager = definitions::create_role(
        app,
        &meta,
        &owner,
        organization.id,
        RoleInput {
            name: Some("release_manager".to_owned()),
            description: Some("Ships releases inside one workspace.".to_owned()),
            keychain_ids: Some(vec![keychain.id]),
            keys: Some(vec!["databases.read".to_owned()]),
            scope: Some(RoleScope::Workspace),
        },
    )
    .await?;
    let mut people = vec![(
        "Olivia Owner".to_owned(),
        "olivia@acme.example".to_owned(),
        "owner".to_owned(),
    )];
    let (meta, owner) = (&meta, &owner);
    let grant = |principal: Uuid, role: Uuid, workspace: Option<Uuid>| async move {
        let membership = members::add_member(app, organization.id, principal).await?;
        bindings::grant_role(
            app,
            meta,
            owner,
            membership.id,
            role,
            workspace,
            &bindings::Terms::default(),
        )
        .await
    };
    for (name, email, role, workspace) in PEOPLE {
        let who = person(app, meta, name, email).await?;
        let workspace_id = workspace.and_then(|w| workspace_ids.get(w).copied());
        grant(who.user.id, builtins::role_id(role), workspace_id).await?;
        let held = match workspace {
            Some(w) => format!("{role} in {w}"),
            None => role.to_owned(),
        };
        people.push((name.to_owned(), email.to_owned(), held));
    }
    let releaser = person(app, meta, "Rita Releaser", "rita@acme.example").await?;
    grant(
        releaser.user.id,
        release_manager.id,
        workspace_ids.get("infra").copied(),
    )
    .await?;
    people.push((
        "Rita Releaser".to_owned(),
        "rita@acme.example".to_owned(),
        "release_manager (custom) in infra".to_owned(),
    ));
    let invited = "newcomer@acme.example".to_owned();
    invitations::invite(
        app,
        meta,
        owner,
        organization.id,
        &invited,
        vec![Offer {
            role_id: builtins::role_id("member"),
            workspace_id: None,
            expires_at: None,
        }],
    )
    .await?;
    let service_account = api_tokens::create_service_account(
        app,
        meta,
        owner,
        organization.id,
        "CI deployer",
        vec![Offer {
            role_id: release_manager.id,
            workspace_id: workspace_ids.get("infra").copied(),
            expires_at: None,
        }],
    )
    .await?;
    let (_, service_account_token) = api_tokens::create_service_account_token(
        app,
        meta,
        owner,
        service_account.id,
        TokenSpec {
            name: "pipeline".to_owned(),
            organization_id: None,
            keychain_id: None,
            expires_at: None,
        },
    )
    .await?;
    Ok(Seeded {
        people,
        service_account_token,
        invited,
    })
}
