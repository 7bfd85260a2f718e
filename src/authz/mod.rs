//! Pure authorization: the key catalog, key sets and decisions. No I/O happens here.
pub mod catalog;
pub mod keyset;

pub use catalog::{Catalog, CatalogError, GrantedBy, RoleScope};
pub use keyset::{KeyIndex, KeySet};

/// One role binding as the engine sees it: the role's effective keys and where it applies.
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
    // Close each part before removing organization-wide keys, so that an implication can never
    // bring one back into a workspace.
    let local = catalog.close(&local).difference(&catalog.organization_wide_keys());
    catalog.close(&org).union(&local)
}
