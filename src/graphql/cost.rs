//! What an operation may cost, computed before it runs.
//!
//! The model (GitHub's node limit and Shopify's query cost are the examples): every field costs
//! 1 plus its selection; a connection (a field taking `first`) multiplies its selection by the
//! page size asked for (20 when not given, at most 100), and its `edges` / `nodes` add nothing
//! more; any other list of objects multiplies by
//! what it holds in practice ([`LIST`] for an organization's definitions or a user's tokens,
//! [`SHORT_LIST`] for the few lists named in [`short_list`]); fields computed per row from an
//! organization's definitions cost [`COMPUTED`]. Aliases add up like any other field; `@skip`
//! and `@include` are not looked at (the cost is what may run). The HTTP layer refuses an
//! operation above the limit before anything runs, makes the operations of one batch share one
//! budget, and reports what each cost in `extensions.cost` (`requested`, `limit`).
//!
//! The model reads the schema's own SDL once, so a field added later is priced by the same
//! rules without anyone remembering to (and no async-graphql extension is needed: one would box
//! every field's resolution).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, Value, Variables};

/// Page size a connection is costed at when `first` is not given.
pub const DEFAULT_PAGE: usize = 20;
/// Largest page a connection returns.
pub const MAX_PAGE: usize = 100;
/// What a list of objects is costed at: an organization's roles or keychains, a user's tokens.
pub const LIST: usize = 20;
/// What a short per-row list is costed at.
pub const SHORT_LIST: usize = 3;
/// Fields computed per row from definitions (key lists, holder counts).
pub const COMPUTED: usize = 5;
/// Selections visited in pricing one operation before it is priced as too costly: pricing
/// itself must stay cheap whatever the document.
const MAX_VISITS: usize = 100_000;
/// A mutation field's own cost: each one is a transaction of its own.
pub const MUTATION: usize = 100;

/// Lists that hold a handful per row: a member's bindings, a role's keychains.
fn short_list(type_name: &str, field: &str) -> bool {
    matches!(
        (type_name, field),
        ("Membership", "roleBindings") | ("Invitation", "roleBindings") | ("Role", "keychains")
    )
}

/// Fields computed per row from an organization's definitions.
fn computed(type_name: &str, field: &str) -> Option<usize> {
    match (type_name, field) {
        ("Organization", "viewerKeys")
        | ("Membership", "effectiveKeys")
        | ("Role", "keys")
        | ("Role", "effectiveKeys")
        | ("Role", "holderCount")
        | ("Keychain", "keys")
        | ("Invitation", "offeredRoleNames") => Some(COMPUTED),
        ("Organization", "rolesDocument") => Some(LIST * COMPUTED),
        _ => None,
    }
}

/// How a field of the schema is priced.
#[derive(Clone, Debug)]
struct FieldShape {
    /// The named type it returns.
    returns: String,
    /// Whether it returns a list.
    list: bool,
    /// Whether it takes `first` (a connection).
    paged: bool,
}

/// The cost model of one schema.
#[derive(Clone, Debug)]
pub struct CostModel {
    pub limit: usize,
    fields: HashMap<String, HashMap<String, FieldShape>>,
    query_root: String,
    mutation_root: String,
    subscription_root: String,
}

fn named(ty: &Type) -> (String, bool) {
    match &ty.base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (named(inner).0, true),
    }
}

impl CostModel {
    /// Reads the schema's SDL.
    pub fn from_sdl(sdl: &str, limit: usize) -> CostModel {
        let mut model = CostModel {
            limit,
            fields: HashMap::new(),
            query_root: "Query".to_owned(),
            mutation_root: "Mutation".to_owned(),
            subscription_root: "Subscription".to_owned(),
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return model;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    if let Some(q) = schema.query {
                        model.query_root = q.node.to_string();
                    }
                    if let Some(m) = schema.mutation {
                        model.mutation_root = m.node.to_string();
                    }
                    if let Some(s) = schema.subscription {
                        model.subscription_root = s.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let fields = match ty.kind {
                        TypeKind::Object(object) => object.fields,
                        TypeKind::Interface(interface) => interface.fields,
                        _ => continue,
                    };
                    let shapes = fields
                        .into_iter()
                        .map(|f| {
                            let f = f.node;
                            let (returns, list) = named(&f.ty.node);
                            let paged = f.arguments.iter().any(|a| a.node.name.node == "first");
                            (f.name.node.to_string(), FieldShape { returns, list, paged })
                        })
                        .collect();
                    model.fields.insert(ty.name.node.to_string(), shapes);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        model
    }

    /// The cost of the operation a request runs (`None` when the document names no single
    /// operation to run: execution reports that).
    pub fn cost(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<usize> {
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => &operation.node,
            (DocumentOperations::Multiple(operations), Some(name)) => &operations.get(name)?.node,
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                &operations.values().next()?.node
            }
            _ => return None,
        };
        let root = match operation.ty {
            OperationType::Query => &self.query_root,
            OperationType::Mutation => &self.mutation_root,
            OperationType::Subscription => &self.subscription_root,
        };
        let mut defaults = HashMap::new();
        for definition in &operation.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                defaults.insert(definition.node.name.node.clone(), default.node.clone());
            }
        }
        let walk = Walk {
            model: self,
            document,
            variables,
            defaults: &defaults,
            fragments: RefCell::new(HashMap::new()),
            visits: Cell::new(0),
        };
        let mut cost = walk.selection_set(root, &operation.selection_set.node);
        if operation.ty == OperationType::Mutation {
            let fields = operation.selection_set.node.items.len();
            cost = cost.saturating_add(fields.saturating_mul(MUTATION));
        }
        Some(if walk.visits.get() > MAX_VISITS {
            usize::MAX
        } else {
            cost
        })
    }
}

struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: &'a HashMap<Name, Value>,
    /// Each fragment priced once (`None` while being priced: a spread of it inside itself is a
    /// cycle, which validation refuses, and is priced at nothing here).
    fragments: RefCell<HashMap<Name, Option<usize>>>,
    visits: Cell<usize>,
}

impl Walk<'_> {
    fn selection_set(&self, type_name: &str, set: &SelectionSet) -> usize {
        let mut total: usize = 0;
        for item in &set.items {
            self.visits.set(self.visits.get() + 1);
            if self.visits.get() > MAX_VISITS {
                return usize::MAX;
            }
            let cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let shape = self.model.fields.get(type_name).and_then(|f| f.get(name));
                    let child = match shape {
                        Some(shape) => self.selection_set(&shape.returns, &field.selection_set.node),
                        None => self.selection_set("", &field.selection_set.node),
                    };
                    self.field(type_name, name, shape, field, child)
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let on = fragment
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .unwrap_or(type_name);
                    self.selection_set(on, &fragment.selection_set.node)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            };
            total = total.saturating_add(cost);
        }
        total
    }

    /// A fragment's cost, priced once per operation however often it is spread.
    fn fragment(&self, name: &Name) -> usize {
        if let Some(known) = self.fragments.borrow().get(name) {
            return known.unwrap_or(0);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        self.fragments.borrow_mut().insert(name.clone(), None);
        let cost = self.selection_set(
            fragment.node.type_condition.node.on.node.as_str(),
            &fragment.node.selection_set.node,
        );
        self.fragments.borrow_mut().insert(name.clone(), Some(cost));
        cost
    }

    fn field(
        &self,
        type_name: &str,
        name: &str,
        shape: Option<&FieldShape>,
        field: &async_graphql::parser::types::Field,
        child: usize,
    ) -> usize {
        if let Some(cost) = computed(type_name, name) {
            return cost;
        }
        let Some(shape) = shape else {
            return 1usize.saturating_add(child);
        };
        if type_name == self.model.query_root && name == "nodes" {
            let ids = self.argument(field, "ids").map_or(1, |v| match v {
                Value::List(items) => items.len(),
                _ => 1,
            });
            return 1usize.saturating_add(ids.saturating_mul(child));
        }
        let rows = if shape.paged {
            let first = match self.argument(field, "first") {
                Some(Value::Number(n)) => n.as_i64().unwrap_or(MAX_PAGE as i64),
                _ => DEFAULT_PAGE as i64,
            };
            first.clamp(1, MAX_PAGE as i64) as usize
        } else if shape.list && child > 0 && !type_name.ends_with("Connection") {
            // A connection's `edges` and `nodes` are the rows its field already paid for.
            if short_list(type_name, name) { SHORT_LIST } else { LIST }
        } else {
            1
        };
        1usize.saturating_add(rows.saturating_mul(child))
    }

    /// An argument's value with variables substituted.
    fn argument(&self, field: &async_graphql::parser::types::Field, name: &str) -> Option<Value> {
        let (_, value) = field.arguments.iter().find(|(n, _)| n.node == name)?;
        value
            .node
            .clone()
            .into_const_with(|variable| {
                self.variables
                    .get(&variable)
                    .or_else(|| self.defaults.get(&variable))
                    .cloned()
                    .ok_or(())
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "schema { query: QueryRoot }
        type QueryRoot { organization(slug: String!): Organization nodes(ids: [ID!]!): [Node]! viewer: User! }
        interface Node { id: ID! }
        type User { organizations(first: Int, after: String): OrganizationConnection! apiTokens: [ApiToken!]! }
        type ApiToken { id: ID! name: String! }
        type OrganizationConnection { edges: [OrganizationEdge!]! }
        type OrganizationEdge { node: Organization! }
        type Organization { name: String! members(first: Int): MembershipConnection! }
        type MembershipConnection { edges: [MembershipEdge!]! }
        type MembershipEdge { node: Membership! }
        type Membership { id: ID! effectiveKeys: [String!]! roleBindings: [RoleBinding!]! }
        type RoleBinding { grantedAt: String! }";

    fn cost(query: &str, variables: serde_json::Value) -> usize {
        let model = CostModel::from_sdl(SDL, 50_000);
        let document = async_graphql::parser::parse_query(query).expect("query");
        model
            .cost(&document, None, &Variables::from_json(variables))
            .expect("an operation")
    }

    #[test]
    fn connections_multiply_by_the_page_asked_for_within_bounds() {
        let members = |first: &str| {
            format!("{{ organization(slug: \"a\") {{ members{first} {{ edges {{ node {{ effectiveKeys }} }} }} }} }}")
        };
        assert_eq!(cost(&members(""), serde_json::json!({})), 2 + 20 * 7);
        assert_eq!(cost(&members("(first: 100)"), serde_json::json!({})), 2 + 100 * 7);
        assert_eq!(
            cost(&members("(first: 3000000000)"), serde_json::json!({})),
            2 + 100 * 7
        );
        assert_eq!(
            cost(
                "query($n: Int) { organization(slug: \"a\") { members(first: $n) { edges { node { id } } } } }",
                serde_json::json!({ "n": 5 })
            ),
            2 + 5 * 3
        );
    }

    #[test]
    fn pricing_stays_cheap_for_fragment_bombs_and_cycles() {
        // Each fragment spreads the next twice: 2^40 fields if expanded, priced once each.
        let mut document = String::from("{ ...F0 }");
        for i in 0..40 {
            document.push_str(&format!(" fragment F{i} on QueryRoot {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        document.push_str(" fragment F40 on QueryRoot { viewer { apiTokens { id } } }");
        let started = std::time::Instant::now();
        let priced = cost(&document, serde_json::json!({}));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            priced > 50_000,
            "a fragment bomb is priced as what it expands to: {priced}"
        );
        let cycle = "query { ...F } fragment F on QueryRoot { ...F ...F viewer { apiTokens { id } } }";
        let started = std::time::Instant::now();
        cost(cycle, serde_json::json!({}));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn aliases_fragments_and_lists_add_up() {
        let two = "{ organization(slug: \"a\") { a: members(first: 10) { edges { node { id } } } b: members(first: 10) { ...M } } }
                   fragment M on MembershipConnection { edges { node { id roleBindings { grantedAt } } } }";
        assert_eq!(
            cost(two, serde_json::json!({})),
            1 + (1 + 10 * 3) + (1 + 10 * (1 + 1 + 1 + (1 + 3)))
        );
        assert_eq!(
            cost("{ viewer { apiTokens { id name } } }", serde_json::json!({})),
            1 + 1 + 20 * 2
        );
        assert_eq!(
            cost(
                "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                serde_json::json!({ "ids": ["a", "b", "c"] })
            ),
            1 + 3
        );
    }
}
