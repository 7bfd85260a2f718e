//! Member lists resolved straight into response values.
//!
//! A settings page lists hundreds of members, each with its user, role bindings, roles and
//! keychains. async-graphql's generic resolution spends a boxed future, a loader call and a map
//! insertion on every field of every listed object, which made such a response cost tens of
//! milliseconds of CPU. When a `members` selection asks only for plain fields of those objects,
//! [`plan`] turns it into a plan; the resolver then loads every row the plan needs with a few
//! batched loader calls and [`build`] writes the response value directly, with the same keys, in
//! the same order and with the same values as the generic resolution.
//!
//! `@skip` and `@include` are applied by async-graphql before execution, so what remains is
//! plain. Anything the plan does not cover (another directive, an argument, a field that needs its own
//! permission check or statement, a response key selected twice with different sub-selections,
//! a row missing because of a concurrent change) makes [`plan`] or [`build`] give up, and the
//! field is resolved the generic way. Tests compare both ways on many selections.
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::enum_value;
use async_graphql::{Context, ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value};
use uuid::Uuid;

use crate::store::entities::{keychains, memberships, role_bindings, roles, users, workspaces};

use super::connection::PageInfo;
use super::ids::{self, NodeKind};
use super::objects::{DefinitionKind, RoleScope, UserKind};

/// A field's value: built already, or an object left to the generic resolution.
pub enum Resolved<T> {
    /// Taken by the one resolution of the field (a response of a thousand members is not
    /// copied).
    Value(std::sync::Mutex<Option<Value>>),
    Generic(T),
}

impl<T> Resolved<T> {
    pub fn value(value: Value) -> Resolved<T> {
        Resolved::Value(std::sync::Mutex::new(Some(value)))
    }
}

impl<T: OutputType> OutputType for Resolved<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        match self {
            Resolved::Value(value) => Ok(value.lock().ok().and_then(|mut value| value.take()).unwrap_or_default()),
            Resolved::Generic(object) => object.resolve(ctx, field).await,
        }
    }
}

/// Response keys of one selection set, in order, each with what it asks for.
type Keys<F> = Vec<(Name, F)>;

enum ConnectionField {
    Typename,
    TotalCount,
    Edges(Keys<EdgeField>),
    Nodes(Keys<MemberField>),
    PageInfo(Keys<PageInfoField>),
}

enum EdgeField {
    Typename,
    Cursor,
    Node(Keys<MemberField>),
}

enum PageInfoField {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

enum MemberField {
    Typename,
    Id,
    JoinedAt,
    Unassigned,
    User(Keys<UserField>),
    RoleBindings(Keys<BindingField>),
}

enum UserField {
    Typename,
    Id,
    Name,
    Email,
    Kind,
    CreatedAt,
}

enum BindingField {
    Typename,
    GrantedAt,
    GrantedBy(Keys<UserField>),
    Workspace(Keys<WorkspaceField>),
    Role(Keys<RoleField>),
}

enum RoleField {
    Typename,
    Id,
    Name,
    Description,
    Kind,
    Scope,
    MinHolders,
    MaxHolders,
    Keychains(Keys<KeychainField>),
}

enum KeychainField {
    Typename,
    Id,
    Name,
    Description,
    Kind,
}

enum WorkspaceField {
    Typename,
    Id,
    Slug,
    Name,
    Description,
    CreatedAt,
}

/// What a `members` selection asks for, when it asks only for plain fields.
pub struct Plan {
    fields: Keys<ConnectionField>,
}

/// The rows a plan needs beyond the page itself.
#[derive(Default, Clone, Copy)]
pub struct Needs {
    pub total_count: bool,
    pub users: bool,
    pub bindings: bool,
    pub granted_by: bool,
    pub workspaces: bool,
    pub keychains: bool,
}

/// A member's role bindings, each with its role when it was loaded along.
pub type Bindings = Arc<Vec<(role_bindings::Model, Option<roles::Model>)>>;

/// Everything loaded for one page of members.
pub struct Rows {
    pub edges: Vec<(String, memberships::Model)>,
    pub page_info: PageInfo,
    pub total_count: Option<u64>,
    pub users: HashMap<Uuid, Arc<users::Model>>,
    pub bindings: HashMap<Uuid, Bindings>,
    pub workspaces: HashMap<Uuid, workspaces::Model>,
    /// Keychains of every role listed, by role.
    pub keychains: HashMap<Uuid, Vec<keychains::Model>>,
}

/// Walks a selection set: fragments are flattened (the types here are concrete, so validation
/// already matched their type conditions), and anything carrying a directive or an argument
/// ends the plan. A key selected twice is kept once when it is a plain field both times.
fn keys<F>(
    ctx: &Context<'_>,
    set: &Positioned<SelectionSet>,
    field: &mut impl FnMut(&Context<'_>, &Field) -> Option<F>,
) -> Option<Keys<F>> {
    fn walk<F>(
        ctx: &Context<'_>,
        set: &Positioned<SelectionSet>,
        field: &mut impl FnMut(&Context<'_>, &Field) -> Option<F>,
        out: &mut Keys<F>,
        seen: &mut HashMap<Name, (Name, bool)>,
        depth: usize,
    ) -> Option<()> {
        if depth > 16 {
            return None;
        }
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    if !f.directives.is_empty() || !f.arguments.is_empty() {
                        return None;
                    }
                    let key = f.alias.as_ref().unwrap_or(&f.name).node.clone();
                    let plain = f.selection_set.node.items.is_empty();
                    if let Some((name, was_plain)) = seen.get(&key) {
                        // The same plain field again adds nothing; anything else would need
                        // the sub-selections merged, which the generic resolution does.
                        if *name == f.name.node && plain && *was_plain {
                            continue;
                        }
                        return None;
                    }
                    seen.insert(key.clone(), (f.name.node.clone(), plain));
                    out.push((key, field(ctx, f)?));
                }
                Selection::FragmentSpread(spread) => {
                    if !spread.node.directives.is_empty() {
                        return None;
                    }
                    let fragment = ctx.query_env.fragments.get(&spread.node.fragment_name.node)?;
                    if !fragment.node.directives.is_empty() {
                        return None;
                    }
                    walk(ctx, &fragment.node.selection_set, field, out, seen, depth + 1)?;
                }
                Selection::InlineFragment(inline) => {
                    if !inline.node.directives.is_empty() {
                        return None;
                    }
                    walk(ctx, &inline.node.selection_set, field, out, seen, depth + 1)?;
                }
            }
        }
        Some(())
    }
    let mut out = Vec::new();
    walk(ctx, set, field, &mut out, &mut HashMap::new(), 0)?;
    Some(out)
}

fn user_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>) -> Option<Keys<UserField>> {
    keys(ctx, set, &mut |_, f| {
        Some(match f.name.node.as_str() {
            "__typename" => UserField::Typename,
            "id" => UserField::Id,
            "name" => UserField::Name,
            "email" => UserField::Email,
            "kind" => UserField::Kind,
            "createdAt" => UserField::CreatedAt,
            _ => return None,
        })
    })
}

fn keychain_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>) -> Option<Keys<KeychainField>> {
    keys(ctx, set, &mut |_, f| {
        Some(match f.name.node.as_str() {
            "__typename" => KeychainField::Typename,
            "id" => KeychainField::Id,
            "name" => KeychainField::Name,
            "description" => KeychainField::Description,
            "kind" => KeychainField::Kind,
            _ => return None,
        })
    })
}

fn workspace_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>) -> Option<Keys<WorkspaceField>> {
    keys(ctx, set, &mut |_, f| {
        Some(match f.name.node.as_str() {
            "__typename" => WorkspaceField::Typename,
            "id" => WorkspaceField::Id,
            "slug" => WorkspaceField::Slug,
            "name" => WorkspaceField::Name,
            "description" => WorkspaceField::Description,
            "createdAt" => WorkspaceField::CreatedAt,
            _ => return None,
        })
    })
}

fn role_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>, needs: &mut Needs) -> Option<Keys<RoleField>> {
    keys(ctx, set, &mut |ctx, f| {
        Some(match f.name.node.as_str() {
            "__typename" => RoleField::Typename,
            "id" => RoleField::Id,
            "name" => RoleField::Name,
            "description" => RoleField::Description,
            "kind" => RoleField::Kind,
            "scope" => RoleField::Scope,
            "minHolders" => RoleField::MinHolders,
            "maxHolders" => RoleField::MaxHolders,
            "keychains" => {
                needs.keychains = true;
                RoleField::Keychains(keychain_fields(ctx, &f.selection_set)?)
            }
            _ => return None,
        })
    })
}

fn binding_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>, needs: &mut Needs) -> Option<Keys<BindingField>> {
    keys(ctx, set, &mut |ctx, f| {
        Some(match f.name.node.as_str() {
            "__typename" => BindingField::Typename,
            "grantedAt" => BindingField::GrantedAt,
            "grantedBy" => {
                needs.granted_by = true;
                BindingField::GrantedBy(user_fields(ctx, &f.selection_set)?)
            }
            "workspace" => {
                needs.workspaces = true;
                BindingField::Workspace(workspace_fields(ctx, &f.selection_set)?)
            }
            "role" => BindingField::Role(role_fields(ctx, &f.selection_set, needs)?),
            _ => return None,
        })
    })
}

fn member_fields(ctx: &Context<'_>, set: &Positioned<SelectionSet>, needs: &mut Needs) -> Option<Keys<MemberField>> {
    keys(ctx, set, &mut |ctx, f| {
        Some(match f.name.node.as_str() {
            "__typename" => MemberField::Typename,
            "id" => MemberField::Id,
            "joinedAt" => MemberField::JoinedAt,
            "unassigned" => {
                needs.bindings = true;
                MemberField::Unassigned
            }
            "user" => {
                needs.users = true;
                MemberField::User(user_fields(ctx, &f.selection_set)?)
            }
            "roleBindings" => {
                needs.bindings = true;
                MemberField::RoleBindings(binding_fields(ctx, &f.selection_set, needs)?)
            }
            _ => return None,
        })
    })
}

/// The plan for the `members` field being resolved, or `None` when the selection asks for
/// anything the generic resolution must do.
pub fn plan(ctx: &Context<'_>) -> Option<(Plan, Needs)> {
    let mut needs = Needs::default();
    let fields = keys(ctx, &ctx.item.node.selection_set, &mut |ctx, f| {
        Some(match f.name.node.as_str() {
            "__typename" => ConnectionField::Typename,
            "totalCount" => {
                needs.total_count = true;
                ConnectionField::TotalCount
            }
            "edges" => ConnectionField::Edges(keys(ctx, &f.selection_set, &mut |ctx, f| {
                Some(match f.name.node.as_str() {
                    "__typename" => EdgeField::Typename,
                    "cursor" => EdgeField::Cursor,
                    "node" => EdgeField::Node(member_fields(ctx, &f.selection_set, &mut needs)?),
                    _ => return None,
                })
            })?),
            "nodes" => ConnectionField::Nodes(member_fields(ctx, &f.selection_set, &mut needs)?),
            "pageInfo" => ConnectionField::PageInfo(keys(ctx, &f.selection_set, &mut |_, f| {
                Some(match f.name.node.as_str() {
                    "__typename" => PageInfoField::Typename,
                    "hasNextPage" => PageInfoField::HasNextPage,
                    "hasPreviousPage" => PageInfoField::HasPreviousPage,
                    "startCursor" => PageInfoField::StartCursor,
                    "endCursor" => PageInfoField::EndCursor,
                    _ => return None,
                })
            })?),
            _ => return None,
        })
    })?;
    Some((Plan { fields }, needs))
}

fn object(fields: IndexMap<Name, Value>) -> Value {
    Value::Object(fields)
}

fn typename(name: &str) -> Value {
    Value::String(name.to_owned())
}

fn id(kind: NodeKind, id: Uuid) -> Value {
    Value::String(ids::encode(kind, id).0)
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn time(value: &chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(value.to_rfc3339())
}

fn optional(value: Option<Value>) -> Value {
    value.unwrap_or(Value::Null)
}

fn definition_kind(kind: &str) -> Value {
    enum_value(if kind == "BUILT_IN" {
        DefinitionKind::BuiltIn
    } else {
        DefinitionKind::Custom
    })
}

fn user_value(keys: &Keys<UserField>, user: &users::Model) -> Value {
    object(
        keys.iter()
            .map(|(key, f)| {
                let value = match f {
                    UserField::Typename => typename("User"),
                    UserField::Id => id(NodeKind::User, user.id),
                    UserField::Name => text(&user.name),
                    UserField::Email => optional(user.email.as_deref().map(text)),
                    UserField::Kind => enum_value(if user.kind == "SERVICE" {
                        UserKind::Service
                    } else {
                        UserKind::Human
                    }),
                    UserField::CreatedAt => time(&user.created_at),
                };
                (key.clone(), value)
            })
            .collect(),
    )
}

fn keychain_value(keys: &Keys<KeychainField>, chain: &keychains::Model) -> Value {
    object(
        keys.iter()
            .map(|(key, f)| {
                let value = match f {
                    KeychainField::Typename => typename("Keychain"),
                    KeychainField::Id => id(NodeKind::Keychain, chain.id),
                    KeychainField::Name => text(&chain.name),
                    KeychainField::Description => text(&chain.description),
                    KeychainField::Kind => definition_kind(&chain.kind),
                };
                (key.clone(), value)
            })
            .collect(),
    )
}

fn workspace_value(keys: &Keys<WorkspaceField>, workspace: &workspaces::Model) -> Value {
    object(
        keys.iter()
            .map(|(key, f)| {
                let value = match f {
                    WorkspaceField::Typename => typename("Workspace"),
                    WorkspaceField::Id => id(NodeKind::Workspace, workspace.id),
                    WorkspaceField::Slug => text(&workspace.slug),
                    WorkspaceField::Name => text(&workspace.name),
                    WorkspaceField::Description => text(&workspace.description),
                    WorkspaceField::CreatedAt => time(&workspace.created_at),
                };
                (key.clone(), value)
            })
            .collect(),
    )
}

fn role_value(keys: &Keys<RoleField>, role: &roles::Model, rows: &Rows) -> Option<Value> {
    let mut out = IndexMap::with_capacity(keys.len());
    for (key, f) in keys {
        let value = match f {
            RoleField::Typename => typename("Role"),
            RoleField::Id => id(NodeKind::Role, role.id),
            RoleField::Name => text(&role.name),
            RoleField::Description => text(&role.description),
            RoleField::Kind => definition_kind(&role.kind),
            RoleField::Scope => enum_value(match role.scope.as_str() {
                "ORGANIZATION" => RoleScope::Organization,
                "WORKSPACE" => RoleScope::Workspace,
                _ => RoleScope::Any,
            }),
            RoleField::MinHolders => Value::from(role.min_holders),
            RoleField::MaxHolders => optional(role.max_holders.map(Value::from)),
            RoleField::Keychains(keys) => Value::List(
                rows.keychains
                    .get(&role.id)?
                    .iter()
                    .map(|chain| keychain_value(keys, chain))
                    .collect(),
            ),
        };
        out.insert(key.clone(), value);
    }
    Some(object(out))
}

fn binding_value(
    keys: &Keys<BindingField>,
    binding: &role_bindings::Model,
    role: Option<&roles::Model>,
    rows: &Rows,
) -> Option<Value> {
    let mut out = IndexMap::with_capacity(keys.len());
    for (key, f) in keys {
        let value = match f {
            BindingField::Typename => typename("RoleBinding"),
            BindingField::GrantedAt => time(&binding.granted_at),
            // `null` once the granting account is gone, as in the generic resolution.
            BindingField::GrantedBy(keys) => optional(
                binding
                    .granted_by_user_id
                    .and_then(|user| rows.users.get(&user))
                    .map(|user| user_value(keys, user)),
            ),
            BindingField::Workspace(keys) => match binding.workspace_id {
                None => Value::Null,
                Some(workspace) => optional(rows.workspaces.get(&workspace).map(|w| workspace_value(keys, w))),
            },
            BindingField::Role(keys) => role_value(keys, role?, rows)?,
        };
        out.insert(key.clone(), value);
    }
    Some(object(out))
}

fn member_value(keys: &Keys<MemberField>, member: &memberships::Model, rows: &Rows) -> Option<Value> {
    let mut out = IndexMap::with_capacity(keys.len());
    for (key, f) in keys {
        let value = match f {
            MemberField::Typename => typename("Membership"),
            MemberField::Id => id(NodeKind::Membership, member.id),
            MemberField::JoinedAt => time(&member.created_at),
            MemberField::Unassigned => Value::Boolean(rows.bindings.get(&member.id).is_none_or(|b| b.is_empty())),
            MemberField::User(keys) => user_value(keys, rows.users.get(&member.user_id)?),
            MemberField::RoleBindings(keys) => {
                let bindings = rows.bindings.get(&member.id).map(|b| b.as_slice()).unwrap_or_default();
                let mut list = Vec::with_capacity(bindings.len());
                for (binding, role) in bindings {
                    list.push(binding_value(keys, binding, role.as_ref(), rows)?);
                }
                Value::List(list)
            }
        };
        out.insert(key.clone(), value);
    }
    Some(object(out))
}

/// The response value of the planned selection, or `None` when a row it needs is missing (a
/// concurrent change): the generic resolution then reports it as it always does.
pub fn build(plan: &Plan, rows: &Rows) -> Option<Value> {
    let mut out = IndexMap::with_capacity(plan.fields.len());
    for (key, f) in &plan.fields {
        let value = match f {
            ConnectionField::Typename => typename("MembershipConnection"),
            ConnectionField::TotalCount => Value::from(rows.total_count? as i64),
            ConnectionField::Edges(keys) => {
                let mut list = Vec::with_capacity(rows.edges.len());
                for (cursor, member) in &rows.edges {
                    let mut edge = IndexMap::with_capacity(keys.len());
                    for (key, f) in keys {
                        let value = match f {
                            EdgeField::Typename => typename("MembershipEdge"),
                            EdgeField::Cursor => text(cursor),
                            EdgeField::Node(keys) => member_value(keys, member, rows)?,
                        };
                        edge.insert(key.clone(), value);
                    }
                    list.push(object(edge));
                }
                Value::List(list)
            }
            ConnectionField::Nodes(keys) => {
                let mut list = Vec::with_capacity(rows.edges.len());
                for (_, member) in &rows.edges {
                    list.push(member_value(keys, member, rows)?);
                }
                Value::List(list)
            }
            ConnectionField::PageInfo(keys) => object(
                keys.iter()
                    .map(|(key, f)| {
                        let info = &rows.page_info;
                        let value = match f {
                            PageInfoField::Typename => typename("PageInfo"),
                            PageInfoField::HasNextPage => Value::Boolean(info.has_next_page),
                            PageInfoField::HasPreviousPage => Value::Boolean(info.has_previous_page),
                            PageInfoField::StartCursor => optional(info.start_cursor.as_deref().map(text)),
                            PageInfoField::EndCursor => optional(info.end_cursor.as_deref().map(text)),
                        };
                        (key.clone(), value)
                    })
                    .collect(),
            ),
        };
        out.insert(key.clone(), value);
    }
    Some(object(out))
}

/// Bindings (and with `keychains`, the keychains of their roles) a built list hands out, for the
/// request's object budget.
pub fn objects(rows: &Rows, keychains: bool) -> usize {
    rows.edges
        .iter()
        .filter_map(|(_, member)| rows.bindings.get(&member.id))
        .flat_map(|bindings| bindings.iter())
        .map(|(binding, _)| {
            1 + if keychains {
                rows.keychains.get(&binding.role_id).map_or(0, Vec::len)
            } else {
                0
            }
        })
        .sum()
}

/// The distinct ids `id` picks out of every binding (in no particular order).
pub fn referenced(
    bindings: &HashMap<Uuid, Bindings>,
    id: impl Fn(&role_bindings::Model, Option<&roles::Model>) -> Option<Uuid>,
) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = bindings
        .values()
        .flat_map(|list| list.iter())
        .filter_map(|(binding, role)| id(binding, role.as_ref()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
