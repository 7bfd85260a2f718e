//! A property test of the grant rule: random sequences of grants, revocations, role and keychain
//! edits, keychain assignments, imports, invitations (accepted), service accounts and token mints,
//! each by a random member, against the real services and database. After every step that
//! succeeded, nobody holds a key, at any scope, that the member who gave it lacked there; keys
//! only owners grant were given by an owner; owner-only keys are held through `owner` alone; and
//! the organization still has an owner.
use std::collections::HashMap;

use guildhall::authz::KeySet;
use guildhall::domain::access;
use guildhall::domain::api_tokens::{self, TokenSpec};
use guildhall::domain::bindings;
use guildhall::domain::definitions::{self, KeychainInput, RoleInput};
use guildhall::domain::documents::{self, Format, Mode};
use guildhall::domain::invitations::{self, Offer};
use guildhall::domain::{App, Principal, RequestMeta, builtins, grant_rule, members};
use guildhall::store::entities::{memberships, users};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::helpers::raw_id;

/// One step, its choices as indexes resolved against the world when it runs.
#[derive(Clone, Debug)]
enum Step {
    Grant {
        actor: u8,
        target: u8,
        role: u8,
        in_workspace: bool,
    },
    Revoke {
        actor: u8,
        target: u8,
        role: u8,
        in_workspace: bool,
    },
    CreateRole {
        actor: u8,
        keys: Vec<u8>,
        chain: Option<u8>,
    },
    UpdateRole {
        actor: u8,
        role: u8,
        keys: Vec<u8>,
    },
    CreateKeychain {
        actor: u8,
        keys: Vec<u8>,
    },
    UpdateKeychain {
        actor: u8,
        chain: u8,
        keys: Vec<u8>,
    },
    Assign {
        actor: u8,
        chain: u8,
        role: u8,
        assigned: bool,
    },
    Import {
        actor: u8,
        keys: Vec<u8>,
    },
    Invite {
        actor: u8,
        role: u8,
    },
    ServiceAccount {
        actor: u8,
        role: u8,
    },
    MintToken {
        actor: u8,
        account: u8,
    },
    Remove {
        actor: u8,
        target: u8,
    },
}

fn keys() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(actor, target, role, in_workspace)| Step::Grant { actor, target, role, in_workspace }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(actor, target, role, in_workspace)| Step::Revoke { actor, target, role, in_workspace }),
        3 => (any::<u8>(), keys(), proptest::option::of(any::<u8>()))
            .prop_map(|(actor, keys, chain)| Step::CreateRole { actor, keys, chain }),
        2 => (any::<u8>(), any::<u8>(), keys()).prop_map(|(actor, role, keys)| Step::UpdateRole { actor, role, keys }),
        1 => (any::<u8>(), keys()).prop_map(|(actor, keys)| Step::CreateKeychain { actor, keys }),
        1 => (any::<u8>(), any::<u8>(), keys()).prop_map(|(actor, chain, keys)| Step::UpdateKeychain { actor, chain, keys }),
        1 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(actor, chain, role, assigned)| Step::Assign { actor, chain, role, assigned }),
        1 => (any::<u8>(), keys()).prop_map(|(actor, keys)| Step::Import { actor, keys }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(actor, role)| Step::Invite { actor, role }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(actor, role)| Step::ServiceAccount { actor, role }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(actor, account)| Step::MintToken { actor, account }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(actor, target)| Step::Remove { actor, target }),
    ]
}

/// What the property test knows of its organization.
struct World {
    app: std::sync::Arc<App>,
    organization: Uuid,
    workspace: Uuid,
    /// Human users that are (or were) members.
    people: Vec<Uuid>,
    custom_roles: Vec<Uuid>,
    custom_keychains: Vec<Uuid>,
    service_accounts: Vec<Uuid>,
    invited: usize,
}

/// Every member's keys at the organization and in the workspace.
type Standing = HashMap<Uuid, (KeySet, KeySet, bool)>;

impl World {
    fn pick<T: Copy>(list: &[T], i: u8) -> Option<T> {
        (!list.is_empty()).then(|| list[i as usize % list.len()])
    }

    fn roles(&self) -> Vec<Uuid> {
        let mut roles: Vec<Uuid> = self
            .app
            .catalog
            .roles
            .iter()
            .map(|r| builtins::role_id(&r.name))
            .collect();
        roles.extend(&self.custom_roles);
        roles
    }

    /// Keys from a small pool, so that definitions often overlap what their authors hold: every
    /// kind of key (plain, owner-granted, admin-class, usable in a workspace) is in it.
    fn key_names(&self, picks: &[u8]) -> Vec<String> {
        const POOL: [&str; 12] = [
            "members.read",
            "members.invite",
            "roles.assign",
            "roles.manage",
            "keychains.assign",
            "tokens.manage",
            "service_accounts.manage",
            "audit.read",
            "billing.manage",
            "organization.update",
            "servers.manage",
            "servers.read",
        ];
        picks
            .iter()
            .map(|i| POOL[*i as usize % POOL.len()].to_owned())
            .collect()
    }

    async fn principal(&self, user_id: Uuid) -> Principal {
        let user = users::Entity::find_by_id(user_id)
            .one(&self.app.store.conn)
            .await
            .expect("user")
            .expect("user exists");
        Principal {
            user,
            session_id: None,
            token: None,
            external: None,
        }
    }

    async fn membership_of(&self, user_id: Uuid) -> Option<Uuid> {
        memberships::Entity::find()
            .filter(memberships::Column::OrganizationId.eq(self.organization))
            .filter(memberships::Column::UserId.eq(user_id))
            .one(&self.app.store.conn)
            .await
            .expect("membership")
            .map(|m| m.id)
    }

    async fn standing(&self) -> Standing {
        let mut out = HashMap::new();
        for user in self.people.iter().chain(&self.service_accounts) {
            if let Some(access) = access::load(&self.app.store.conn, &self.app, *user, self.organization)
                .await
                .expect("access")
            {
                out.insert(
                    *user,
                    (
                        access.keys_at(&self.app, None),
                        access.keys_at(&self.app, Some(self.workspace)),
                        grant_rule::is_owner(&self.app, &access),
                    ),
                );
            }
        }
        out
    }
}

/// Runs one step; returns who gave keys in it (`None` when it was refused or gave nothing).
async fn run(world: &mut World, step: &Step, meta: &RequestMeta) -> Option<Uuid> {
    let app = world.app.clone();
    let app = &*app;
    // Three quarters of the steps are by the owner, the admin or the user admin (who can give
    // some keys and not others); the rest by anyone.
    let actor_of = |i: u8| {
        if i < 192 {
            World::pick(&world.people[..3], i / 64)
        } else {
            World::pick(&world.people, i)
        }
    };
    match step {
        Step::Grant {
            actor,
            target,
            role,
            in_workspace,
        }
        | Step::Revoke {
            actor,
            target,
            role,
            in_workspace,
        } => {
            let actor = actor_of(*actor)?;
            let target = World::pick(&world.people, *target)?;
            let membership = world.membership_of(target).await?;
            let role = World::pick(&world.roles(), *role)?;
            let workspace = in_workspace.then_some(world.workspace);
            let principal = world.principal(actor).await;
            let done = if matches!(step, Step::Grant { .. }) {
                bindings::grant_role(
                    app,
                    meta,
                    &principal,
                    membership,
                    role,
                    workspace,
                    &bindings::Terms::default(),
                )
                .await
            } else {
                bindings::revoke_role(app, meta, &principal, membership, role, workspace).await
            };
            done.ok().map(|_| actor)
        }
        Step::CreateRole { actor, keys, chain } => {
            let actor = actor_of(*actor)?;
            let chains: Vec<Uuid> = chain
                .and_then(|c| World::pick(&world.custom_keychains, c))
                .into_iter()
                .collect();
            let input = RoleInput {
                name: Some(format!("role-{}", world.custom_roles.len() + world.invited * 100)),
                description: None,
                keychain_ids: Some(chains),
                keys: Some(world.key_names(keys)),
                scope: None,
            };
            let role = definitions::create_role(app, meta, &world.principal(actor).await, world.organization, input)
                .await
                .ok()?;
            world.custom_roles.push(role.id);
            Some(actor)
        }
        Step::UpdateRole { actor, role, keys } => {
            let actor = actor_of(*actor)?;
            let role = World::pick(&world.custom_roles, *role)?;
            let input = RoleInput {
                name: None,
                description: None,
                keychain_ids: None,
                keys: Some(world.key_names(keys)),
                scope: None,
            };
            definitions::update_role(app, meta, &world.principal(actor).await, role, input)
                .await
                .ok()
                .map(|_| actor)
        }
        Step::CreateKeychain { actor, keys } => {
            let actor = actor_of(*actor)?;
            let input = KeychainInput {
                name: Some(format!("chain-{}", world.custom_keychains.len())),
                description: None,
                keys: Some(world.key_names(keys)),
            };
            let chain =
                definitions::create_keychain(app, meta, &world.principal(actor).await, world.organization, input)
                    .await
                    .ok()?;
            world.custom_keychains.push(chain.id);
            Some(actor)
        }
        Step::UpdateKeychain { actor, chain, keys } => {
            let actor = actor_of(*actor)?;
            let chain = World::pick(&world.custom_keychains, *chain)?;
            let input = KeychainInput {
                name: None,
                description: None,
                keys: Some(world.key_names(keys)),
            };
            definitions::update_keychain(app, meta, &world.principal(actor).await, chain, input)
                .await
                .ok()
                .map(|_| actor)
        }
        Step::Assign {
            actor,
            chain,
            role,
            assigned,
        } => {
            let actor = actor_of(*actor)?;
            let chain = World::pick(&world.custom_keychains, *chain)?;
            let role = World::pick(&world.custom_roles, *role)?;
            definitions::set_keychain_assignment(app, meta, &world.principal(actor).await, chain, role, *assigned)
                .await
                .ok()
                .map(|_| actor)
        }
        Step::Import { actor, keys } => {
            let actor = actor_of(*actor)?;
            let names: Vec<String> = world.key_names(keys).into_iter().map(|k| format!("\"{k}\"")).collect();
            let text = format!(
                "{{\"version\": 1, \"roles\": [{{\"name\": \"imported\", \"keys\": [{}]}}]}}",
                names.join(", ")
            );
            let document = documents::parse(&text, Format::Json).ok()?;
            documents::import(
                app,
                meta,
                &world.principal(actor).await,
                world.organization,
                &document,
                Mode::Merge,
                false,
            )
            .await
            .ok()?;
            if let Some(role) = definitions::roles_of(&app.store.conn, world.organization)
                .await
                .expect("roles")
                .into_iter()
                .find(|r| r.name == "imported")
                && !world.custom_roles.contains(&role.id)
            {
                world.custom_roles.push(role.id);
            }
            Some(actor)
        }
        Step::Invite { actor, role } => {
            let actor = actor_of(*actor)?;
            let role = World::pick(&world.roles(), *role)?;
            world.invited += 1;
            let email = format!("invitee{}@example.com", world.invited);
            let issued = invitations::invite(
                app,
                meta,
                &world.principal(actor).await,
                world.organization,
                &email,
                vec![Offer {
                    role_id: role,
                    workspace_id: None,
                    expires_at: None,
                }],
            )
            .await
            .ok()?;
            // A person whose address is proved (an invitation reaches only such a one).
            let prepared = guildhall::domain::accounts::prepare_sign_up(
                app,
                guildhall::domain::accounts::SignUp {
                    email,
                    password: crate::helpers::PASSWORD.to_owned(),
                    name: "Invitee".to_owned(),
                },
            )
            .await
            .expect("sign up");
            let tx = app.store.begin_write().await.expect("tx");
            let user = guildhall::domain::accounts::sign_up_in(&tx, app, meta, prepared)
                .await
                .expect("sign up");
            tx.commit().await.expect("commit");
            world.people.push(user.user.id);
            invitations::accept(app, meta, &world.principal(user.user.id).await, &issued.token)
                .await
                .ok()
                .map(|_| actor)
        }
        Step::ServiceAccount { actor, role } => {
            let actor = actor_of(*actor)?;
            let role = World::pick(&world.roles(), *role)?;
            let membership = api_tokens::create_service_account(
                app,
                meta,
                &world.principal(actor).await,
                world.organization,
                "robot",
                vec![Offer {
                    role_id: role,
                    workspace_id: None,
                    expires_at: None,
                }],
            )
            .await
            .ok()?;
            world.service_accounts.push(membership.user_id);
            Some(actor)
        }
        Step::MintToken { actor, account } => {
            let actor = actor_of(*actor)?;
            let account = World::pick(&world.service_accounts, *account)?;
            let membership = world.membership_of(account).await?;
            let spec = TokenSpec {
                name: "minted".to_owned(),
                organization_id: None,
                keychain_id: None,
                expires_at: None,
            };
            api_tokens::create_service_account_token(app, meta, &world.principal(actor).await, membership, spec)
                .await
                .ok()?;
            // Holding the token, the actor acts with every key of the account: it must have held
            // them all already.
            let standing = world.standing().await;
            let (actor_org, actor_ws, _) = standing.get(&actor).copied().unwrap_or_default();
            let (account_org, account_ws, _) = standing.get(&account).copied().unwrap_or_default();
            assert!(
                account_org.is_subset_of(&actor_org),
                "a minted token exceeds its minter"
            );
            assert!(
                account_ws.is_subset_of(&actor_ws),
                "a minted token exceeds its minter in the workspace"
            );
            None
        }
        Step::Remove { actor, target } => {
            let actor = actor_of(*actor)?;
            let target = World::pick(&world.people, *target)?;
            let membership = world.membership_of(target).await?;
            members::remove(app, meta, &world.principal(actor).await, membership)
                .await
                .ok()
                .map(|_| actor)
        }
    }
}

#[tokio::test]
async fn no_sequence_of_changes_gives_a_key_its_giver_lacked() {
    let cases: u32 = std::env::var("GUILDHALL_RULE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let sequences = proptest::collection::vec(step(), 20..40);
    let meta = RequestMeta::default();
    let mut steps_run = 0;
    let mut changes = 0;
    let mut succeeded = 0;
    for case in 0..cases {
        let sequence = sequences.new_tree(&mut runner).expect("a sequence").current();
        // Limits out of the way (they have their own tests), so that more steps go through.
        let mut args = crate::helpers::test_args(&crate::helpers::fresh_database_url().await);
        args.plan_limits = Some(
            r#"{"FREE": {"admins": 1000, "members": 1000, "customRoles": 1000, "customKeychains": 1000, "workspaces": 10}}"#
                .to_owned(),
        );
        let app = crate::helpers::spawn_with(args).await;
        let mut people = Vec::new();
        for i in 0..5 {
            people.push(raw_id(&app.sign_up(&format!("p{i}@example.com"), "P").await.id));
        }
        let owner = app.sign_up("owner@example.com", "Owner").await;
        let organization = app.create_organization(&owner, "acme").await;
        let workspace = app.create_workspace(&owner, &organization, "prod").await;
        let mut world = World {
            app: app.app.clone(),
            organization: raw_id(&organization),
            workspace: raw_id(&workspace),
            people: vec![raw_id(&owner.id)],
            custom_roles: Vec::new(),
            custom_keychains: Vec::new(),
            service_accounts: Vec::new(),
            invited: 0,
        };
        // A starting cast: an admin, a user admin, a viewer and two plain members.
        for (user, role) in people.iter().zip(["admin", "user_admin", "viewer", "member", "member"]) {
            let membership = members::add_member(&world.app, world.organization, *user)
                .await
                .expect("member");
            bindings::grant_role(
                &world.app,
                &meta,
                &world.principal(raw_id(&owner.id)).await,
                membership.id,
                builtins::role_id(role),
                None,
                &bindings::Terms::default(),
            )
            .await
            .expect("starting role");
            world.people.push(*user);
        }
        let owner_only = world.app.catalog.owner_only_keys();
        let owner_granted = world.app.catalog.owner_granted_keys();
        for (i, step) in sequence.iter().enumerate() {
            let before = world.standing().await;
            let giver = run(&mut world, step, &meta).await;
            steps_run += 1;
            succeeded += usize::from(giver.is_some());
            let after = world.standing().await;
            let context = || format!("case {case}, step {i} of {sequence:#?}");
            assert!(
                after.values().any(|(_, _, owner)| *owner),
                "no owner left: {}",
                context()
            );
            for (user, (org, ws, is_owner)) in &after {
                assert!(
                    *is_owner || org.intersection(&owner_only).is_empty(),
                    "an owner-only key held without `owner`: {}",
                    context()
                );
                let Some(giver) = giver else { continue };
                let (was_org, was_ws, _) = before.get(user).copied().unwrap_or_default();
                let (giver_org, giver_ws, giver_owner) = before.get(&giver).copied().unwrap_or_default();
                let gained_org = org.difference(&was_org);
                let gained_ws = ws.difference(&was_ws);
                if !gained_org.is_empty() || !gained_ws.is_empty() {
                    changes += 1;
                }
                assert!(
                    gained_org.is_subset_of(&giver_org) && gained_ws.is_subset_of(&giver_ws),
                    "a key was given by someone who lacked it: {}",
                    context()
                );
                assert!(
                    giver_owner || gained_org.union(&gained_ws).intersection(&owner_granted).is_empty(),
                    "an owner-granted key was given by a non-owner: {}",
                    context()
                );
            }
        }
        app.stop().await;
    }
    println!(
        "grant rule: {cases} sequences, {steps_run} steps ({succeeded} succeeded), {changes} gains of keys checked"
    );
    assert!(changes > 0, "no step ever gave anyone a key: the test proves nothing");
}
