//! Pure authorization: the key catalog, key sets and decisions. No I/O happens here.
pub mod catalog;
pub mod keyset;

pub use catalog::{Catalog, CatalogError, GrantedBy, NotificationCategory, RoleScope};
pub use keyset::{KeyIndex, KeySet};

/// One role binding as the engine sees it: the role's effective keys (closed under `implies`)
/// and where it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding<W> {
    pub keys: KeySet,
    /// `None` for an organization-wide binding.
    pub workspace: Option<W>,
}

/// Keys a member holds at a scope: the organization (`workspace = None`) or one workspace.
/// A workspace binding never yields an organization-wide key and applies only in its workspace.
pub fn keys_at<W: PartialEq>(catalog: &Catalog, bindings: &[Binding<W>], workspace: Option<&W>) -> KeySet {
    let mut org = KeySet::EMPTY;
    let mut local = KeySet::EMPTY;
    for binding in bindings {
        match (&binding.workspace, workspace) {
            (None, _) => org.union_with(&binding.keys),
            (Some(w), Some(scope)) if w == scope => local.union_with(&binding.keys),
            _ => {}
        }
    }
    // No closure is computed here: binding keys are roles' effective keys (already closed),
    // a union of closed sets is closed, and removing organization-wide keys keeps a set closed
    // because the catalog refuses implications from ordinary to organization-wide keys.
    org.union(&local.difference(&catalog.organization_wide_keys()))
}

/// The keys a role grants at a scope: all of them organization-wide, and only the ones that
/// are not organization-wide inside a workspace.
pub fn role_keys_at(catalog: &Catalog, role_keys: &KeySet, in_workspace: bool) -> KeySet {
    if in_workspace {
        role_keys.difference(&catalog.organization_wide_keys())
    } else {
        *role_keys
    }
}

/// Why handing out keys is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiftRefusal {
    /// The giver does not hold this key at the scope.
    Missing(KeyIndex),
    /// Only owners may hand out this key (an owner-granted key), and the giver is not one.
    OwnersOnly(KeyIndex),
}

/// The grant rule, whatever the path (a grant, an invitation, a role or keychain edit, an import,
/// a service account, a token): the giver holds every key given at that scope, and keys only
/// owners may grant come from owners. `giver_keys` are the giver's keys at the scope as seen
/// through their token, if any.
pub fn may_give(
    catalog: &Catalog,
    giver_keys: &KeySet,
    giver_is_owner: bool,
    given: &KeySet,
) -> Result<(), GiftRefusal> {
    if let Some(missing) = first_missing(giver_keys, given) {
        return Err(GiftRefusal::Missing(missing));
    }
    if !giver_is_owner && let Some(reserved) = given.intersection(&catalog.owner_granted_keys()).iter().next() {
        return Err(GiftRefusal::OwnersOnly(reserved));
    }
    Ok(())
}

/// The first key of `wanted` that `held` lacks, in catalog order.
pub fn first_missing(held: &KeySet, wanted: &KeySet) -> Option<KeyIndex> {
    wanted.difference(held).iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn catalog() -> Catalog {
        Catalog::builtin()
    }

    fn key_count() -> usize {
        catalog().keys().len()
    }

    fn arbitrary_keys(n: usize) -> impl Strategy<Value = KeySet> {
        proptest::collection::vec(0..n as u16, 0..12).prop_map(|v| v.into_iter().map(KeyIndex).collect())
    }

    fn arbitrary_bindings(n: usize) -> impl Strategy<Value = Vec<Binding<u8>>> {
        proptest::collection::vec(
            (arbitrary_keys(n), proptest::option::of(0u8..3)).prop_map(|(keys, workspace)| Binding { keys, workspace }),
            0..6,
        )
    }

    #[test]
    fn workspace_admin_gets_resource_keys_only_in_its_workspace() {
        let catalog = catalog();
        let role = catalog.role("workspace_admin").expect("role");
        let bindings = [Binding {
            keys: role.effective_keys,
            workspace: Some(1u8),
        }];
        let manage = catalog.lookup("servers.manage").expect("key");
        let billing = catalog.lookup("billing.read").expect("key");
        assert!(keys_at(&catalog, &bindings, Some(&1)).contains(manage));
        assert!(!keys_at(&catalog, &bindings, Some(&2)).contains(manage));
        assert!(!keys_at(&catalog, &bindings, None).contains(manage));
        assert!(!keys_at(&catalog, &bindings, Some(&1)).contains(billing));
    }

    #[test]
    fn user_admin_cannot_give_admin_but_owner_can() {
        let catalog = catalog();
        let keys = |name: &str| catalog.role(name).expect("role").effective_keys;
        assert!(matches!(
            may_give(&catalog, &keys("user_admin"), false, &keys("admin")),
            Err(GiftRefusal::Missing(_))
        ));
        assert_eq!(may_give(&catalog, &keys("user_admin"), false, &keys("member")), Ok(()));
        assert_eq!(may_give(&catalog, &keys("owner"), true, &keys("admin")), Ok(()));
        // Holding every key is not enough for owner-granted ones: an admin is no owner.
        assert!(matches!(
            may_give(&catalog, &keys("admin"), false, &keys("admin")),
            Err(GiftRefusal::OwnersOnly(_))
        ));
    }

    proptest! {
        #[test]
        fn effective_keys_are_closed_under_implication(bindings in arbitrary_bindings(key_count()), scope in proptest::option::of(0u8..3)) {
            let catalog = catalog();
            let bindings: Vec<Binding<u8>> = bindings
                .into_iter()
                .map(|b| Binding { keys: catalog.close(&b.keys), workspace: b.workspace })
                .collect();
            let keys = keys_at(&catalog, &bindings, scope.as_ref());
            prop_assert_eq!(catalog.close(&keys), keys);
        }

        #[test]
        fn workspace_bindings_never_yield_organization_wide_keys(keys in arbitrary_keys(key_count()), workspace in 0u8..3, scope in proptest::option::of(0u8..3)) {
            let catalog = catalog();
            let bindings = [Binding { keys: catalog.close(&keys), workspace: Some(workspace) }];
            let held = keys_at(&catalog, &bindings, scope.as_ref());
            prop_assert!(held.intersection(&catalog.organization_wide_keys()).is_empty());
            if scope != Some(workspace) {
                prop_assert!(held.is_empty());
            }
        }

        #[test]
        fn a_grant_is_allowed_exactly_when_the_role_is_a_subset(actor in arbitrary_keys(key_count()), role in arbitrary_keys(key_count())) {
            let catalog = catalog();
            let actor = catalog.close(&actor);
            let role = catalog.close(&role);
            prop_assert_eq!(may_give(&catalog, &actor, true, &role).is_ok(), role.is_subset_of(&actor));
        }
    }
}
