//! "May member M use key K in organization O?" in process, at 10 to 10,000 organizations:
//! Guildhall's key-set engine next to casbin's RBAC-with-domains enforcer on the same policy.
//!
//! The policy: every organization has four members holding owner, admin, member and viewer;
//! the built-in roles (and their keys) are the same in every organization. In casbin that is
//! `g, user, role, org` per membership and `p, role, *, key, use` per role key, with the
//! standard domain matcher widened to accept the `*` domain of global roles.
use std::collections::HashMap;
use std::hint::black_box;

use casbin::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use guildhall::authz::{self, Binding, Catalog, KeySet};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];
const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || r.dom == p.dom) && r.obj == p.obj && r.act == p.act
"#;

fn member(org: usize, index: usize) -> String {
    format!("user-{org}-{index}")
}

fn domain(org: usize) -> String {
    format!("org-{org}")
}

struct Guildhall {
    catalog: Catalog,
    /// What a request holds once it has loaded the caller's bindings.
    bindings: HashMap<(usize, usize), Vec<Binding<u32>>>,
    /// The same, reduced to the organization-wide key set (the per-request cache).
    keys: HashMap<(usize, usize), KeySet>,
}

fn guildhall(orgs: usize) -> Guildhall {
    let catalog = Catalog::builtin();
    let mut bindings = HashMap::new();
    let mut keys = HashMap::new();
    for org in 0..orgs {
        for (index, role) in ROLES.iter().enumerate() {
            let role_keys = catalog.role(role).expect("role").effective_keys;
            let list = vec![Binding {
                keys: role_keys,
                workspace: None,
            }];
            keys.insert((org, index), authz::keys_at(&catalog, &list, None));
            bindings.insert((org, index), list);
        }
    }
    Guildhall {
        catalog,
        bindings,
        keys,
    }
}

async fn casbin_policy(orgs: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let catalog = Catalog::builtin();
    let mut policies = Vec::new();
    for role in ROLES {
        for key in catalog.names(&catalog.role(role).expect("role").effective_keys) {
            policies.push(vec![role.to_owned(), "*".to_owned(), key, "use".to_owned()]);
        }
    }
    let mut groupings = Vec::new();
    for org in 0..orgs {
        for (index, role) in ROLES.iter().enumerate() {
            groupings.push(vec![member(org, index), role.to_string(), domain(org)]);
        }
    }
    (policies, groupings)
}

async fn enforcer(orgs: usize) -> Enforcer {
    let model = DefaultModel::from_str(MODEL).await.expect("model");
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await.expect("enforcer");
    let (policies, groupings) = casbin_policy(orgs).await;
    enforcer.add_policies(policies).await.expect("policies");
    enforcer.add_grouping_policies(groupings).await.expect("groupings");
    enforcer
}

async fn cached_enforcer(orgs: usize) -> CachedEnforcer {
    let model = DefaultModel::from_str(MODEL).await.expect("model");
    let mut enforcer = CachedEnforcer::new(model, MemoryAdapter::default())
        .await
        .expect("enforcer");
    let (policies, groupings) = casbin_policy(orgs).await;
    enforcer.add_policies(policies).await.expect("policies");
    enforcer.add_grouping_policies(groupings).await.expect("groupings");
    enforcer
}

fn decisions(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("decision");
    group.sample_size(30);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(2));
    for orgs in SIZES {
        let target = orgs / 2;
        // The admin may invite; the question has the same answer in every engine.
        let who = (target, 1);
        let engine = guildhall(orgs);
        let key = engine.catalog.lookup("members.invite").expect("key");
        assert!(engine.keys[&who].contains(key));
        group.bench_with_input(BenchmarkId::new("guildhall_cached", orgs), &orgs, |b, _| {
            b.iter(|| {
                black_box(&engine.keys)
                    .get(black_box(&who))
                    .is_some_and(|k| k.contains(black_box(key)))
            })
        });
        group.bench_with_input(BenchmarkId::new("guildhall_uncached", orgs), &orgs, |b, _| {
            b.iter(|| {
                black_box(&engine.bindings)
                    .get(black_box(&who))
                    .is_some_and(|list| authz::keys_at(&engine.catalog, list, None).contains(black_box(key)))
            })
        });
        let sub = member(target, 1);
        let dom = domain(target);
        let plain = runtime.block_on(enforcer(orgs));
        assert!(
            plain
                .enforce((sub.as_str(), dom.as_str(), "members.invite", "use"))
                .expect("enforce")
        );
        group.bench_with_input(BenchmarkId::new("casbin_uncached", orgs), &orgs, |b, _| {
            b.iter(|| {
                plain
                    .enforce(black_box((sub.as_str(), dom.as_str(), "members.invite", "use")))
                    .expect("enforce")
            })
        });
        drop(plain);
        let mut cached = runtime.block_on(cached_enforcer(orgs));
        group.bench_with_input(BenchmarkId::new("casbin_cached", orgs), &orgs, |b, _| {
            b.iter(|| {
                cached
                    .enforce_mut(black_box((sub.as_str(), dom.as_str(), "members.invite", "use")))
                    .expect("enforce")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
