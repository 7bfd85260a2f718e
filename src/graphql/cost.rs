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
//! Depth is measured here too, over ordinary fields only: introspection (`__schema`, `__type`)
//! is exempt, so the standard introspection query of every tool (15 levels of `ofType`) runs
//! under the default limit. Introspection is priced instead, at the schema's own averages
//! (`types` by the number of types, `fields` by the mean fields per type, and so on, all at a
//! quarter since nothing of it reads the database), and its
//! lists that lead back to types (`fields`, `inputFields`, `interfaces`, `possibleTypes`) may not
//! nest three deep: graphql-js's rule, which bounds what a few aliases of it could build.
//!
//! The model reads the schema's own SDL once, so a field added later is priced by the same
//! rules without anyone remembering to (and no async-graphql extension is needed: one would box
//! every field's resolution).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
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
/// What one `previewRoleChange` or `importRoles` costs on its own (at most ten fit the default
/// limit).
pub const PREVIEW: usize = 5_000;
/// A mutation field's own cost: each one is a transaction of its own.
pub const MUTATION: usize = 100;

/// Lists that hold a handful per row: a member's bindings, a role's keychains.
fn short_list(type_name: &str, field: &str) -> bool {
    matches!(
        (type_name, field),
        ("Membership", "roleBindings")
            | ("Membership", "teams")
            | ("Team", "roleBindings")
            | ("Invitation", "roleBindings")
            | ("Role", "keychains")
    )
}

/// Fields computed per row from an organization's definitions.
fn computed(type_name: &str, field: &str) -> Option<usize> {
    match (type_name, field) {
        ("Organization", "viewerKeys")
        | ("Organization", "viewerHeldKeys")
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

/// Introspection lists that lead back to types; graphql-js refuses them nested three deep.
const INTROSPECTION_NESTING: usize = 3;

/// `__schema` and `__type` fields one document may hold: tools ask for the schema once.
const MAX_INTROSPECTION_ROOTS: usize = 4;

/// Introspection nodes per unit of cost: they are answered from memory.
const INTROSPECTION_DISCOUNT: usize = 4;

/// What an operation asks for, measured before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    /// Its cost in the model's terms.
    pub cost: usize,
    /// Nesting of ordinary fields (introspection is not counted).
    pub depth: usize,
    /// Deepest nesting of introspection lists that lead back to types.
    pub introspection_nesting: usize,
    /// `__schema` and `__type` fields, aliases and spreads counted.
    pub introspection_roots: usize,
}

impl Measure {
    /// Why the operation may not run under `limit` and `max_depth`, if it may not.
    pub fn refusal(&self, limit: usize, max_depth: usize) -> Option<String> {
        if self.depth > max_depth {
            return Some(format!(
                "this operation nests fields {} levels deep, more than the limit of {max_depth}",
                self.depth
            ));
        }
        if self.introspection_roots > MAX_INTROSPECTION_ROOTS {
            return Some(format!(
                "this document asks for `__schema` or `__type` {} times; at most {MAX_INTROSPECTION_ROOTS} may be asked at once",
                self.introspection_roots
            ));
        }
        if self.introspection_nesting >= INTROSPECTION_NESTING {
            return Some(
                "this introspection nests `fields`, `inputFields`, `interfaces` or `possibleTypes` three deep; \
                 ask for the schema once and follow type names instead"
                    .to_owned(),
            );
        }
        if self.cost > limit {
            return Some(format!(
                "this operation costs {}, more than the limit of {limit}: ask for smaller pages or fewer fields",
                self.cost
            ));
        }
        None
    }
}

/// What introspection lists are priced at: the schema's own averages.
#[derive(Clone, Copy, Debug)]
struct SchemaSizes {
    types: usize,
    fields_per_type: usize,
    args_per_field: usize,
    input_fields_per_type: usize,
    values_per_type: usize,
}

/// The cost model of one schema.
#[derive(Clone, Debug)]
pub struct CostModel {
    pub limit: usize,
    /// Deepest nesting of ordinary fields.
    pub max_depth: usize,
    sizes: SchemaSizes,
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
    pub fn from_sdl(sdl: &str, limit: usize, max_depth: usize) -> CostModel {
        let mut model = CostModel {
            limit,
            max_depth,
            sizes: SchemaSizes {
                types: 1,
                fields_per_type: 1,
                args_per_field: 1,
                input_fields_per_type: 1,
                values_per_type: 1,
            },
            fields: HashMap::new(),
            query_root: "Query".to_owned(),
            mutation_root: "Mutation".to_owned(),
            subscription_root: "Subscription".to_owned(),
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return model;
        };
        // The built-in scalars and the introspection types are listed by `__schema` too.
        let (mut types, mut fields, mut args, mut input_fields, mut values) = (13usize, 0usize, 0usize, 0usize, 0usize);
        for definition in &document.definitions {
            if let TypeSystemDefinition::Type(ty) = definition {
                types += 1;
                match &ty.node.kind {
                    TypeKind::Object(o) => {
                        fields += o.fields.len();
                        args += o.fields.iter().map(|f| f.node.arguments.len()).sum::<usize>();
                    }
                    TypeKind::Interface(i) => {
                        fields += i.fields.len();
                        args += i.fields.iter().map(|f| f.node.arguments.len()).sum::<usize>();
                    }
                    TypeKind::InputObject(i) => input_fields += i.fields.len(),
                    TypeKind::Enum(e) => values += e.values.len(),
                    _ => {}
                }
            }
        }
        model.sizes = SchemaSizes {
            types,
            fields_per_type: fields.div_ceil(types).max(1),
            args_per_field: args.div_ceil(fields.max(1)).max(1),
            input_fields_per_type: input_fields.div_ceil(types).max(1),
            values_per_type: values.div_ceil(types).max(1),
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

    /// The cost of a document (see [`CostModel::measure`]).
    pub fn cost(&self, document: &ExecutableDocument, variables: &Variables) -> usize {
        self.measure(document, variables).cost
    }

    /// What a document asks for: every operation in it and every fragment, whichever one the
    /// request names. Validation reads the whole document, so the whole document is priced:
    /// a cheap operation cannot carry an expensive one (or an unused fragment) along unpriced.
    pub fn measure(&self, document: &ExecutableDocument, variables: &Variables) -> Measure {
        let walk = Walk {
            model: self,
            document,
            variables,
            defaults: RefCell::new(HashMap::new()),
            fragments: RefCell::new(HashMap::new()),
            visits: Cell::new(0),
        };
        let mut total = NOTHING;
        for (_, operation) in document.operations.iter() {
            let operation = &operation.node;
            let root = match operation.ty {
                OperationType::Query => &self.query_root,
                OperationType::Mutation => &self.mutation_root,
                OperationType::Subscription => &self.subscription_root,
            };
            *walk.defaults.borrow_mut() = operation
                .variable_definitions
                .iter()
                .filter_map(|d| {
                    let d = &d.node;
                    d.default_value.as_ref().map(|v| (d.name.node.clone(), v.node.clone()))
                })
                .collect();
            let mut measure = walk.selection_set(root, &operation.selection_set.node);
            if operation.ty == OperationType::Mutation {
                // Each root field, wherever a fragment puts it, is a transaction of its own.
                let fields = root_field_count(document, &operation.selection_set.node);
                measure.cost = measure.cost.saturating_add(fields.saturating_mul(MUTATION));
            }
            total = beside(total, measure);
        }
        // Fragments no operation spreads are validated all the same.
        let unused: Vec<Name> = document
            .fragments
            .keys()
            .filter(|name| !walk.fragments.borrow().contains_key(*name))
            .cloned()
            .collect();
        for name in unused {
            total = beside(total, walk.fragment(&name));
        }
        if walk.visits.get() > MAX_VISITS {
            total.cost = usize::MAX;
        }
        total
    }
}

struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Default values of the variables of the operation being measured.
    defaults: RefCell<HashMap<Name, Value>>,
    /// Each fragment measured once (`None` while being measured: a spread of it inside itself
    /// is a cycle, which validation refuses, and is measured as nothing here).
    fragments: RefCell<HashMap<Name, Option<Measure>>>,
    visits: Cell<usize>,
}

/// Root fields of a selection, through inline fragments and spreads, each spread counted as the
/// fields it brings. Each fragment is counted once (a spread of it inside itself, which
/// validation refuses, counts nothing), so a document of fragments that spread each other twice
/// costs time in its length, not in what it expands to.
pub fn root_field_count(document: &ExecutableDocument, set: &SelectionSet) -> usize {
    fn count(document: &ExecutableDocument, set: &SelectionSet, known: &mut HashMap<Name, Option<usize>>) -> usize {
        let mut total: usize = 0;
        for item in &set.items {
            total = total.saturating_add(match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(fragment) => count(document, &fragment.node.selection_set.node, known),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    match known.get(name) {
                        Some(counted) => counted.unwrap_or(0),
                        None => match document.fragments.get(name) {
                            Some(fragment) => {
                                known.insert(name.clone(), None);
                                let fields = count(document, &fragment.node.selection_set.node, known);
                                known.insert(name.clone(), Some(fields));
                                fields
                            }
                            None => 0,
                        },
                    }
                }
            });
        }
        total
    }
    count(document, set, &mut HashMap::new())
}

const NOTHING: Measure = Measure {
    cost: 0,
    depth: 0,
    introspection_nesting: 0,
    introspection_roots: 0,
};

/// Sibling selections: costs add up, depths and nestings take the deepest.
fn beside(a: Measure, b: Measure) -> Measure {
    Measure {
        cost: a.cost.saturating_add(b.cost),
        depth: a.depth.max(b.depth),
        introspection_nesting: a.introspection_nesting.max(b.introspection_nesting),
        introspection_roots: a.introspection_roots.saturating_add(b.introspection_roots),
    }
}

/// What an introspection field returns, and how many of it on average.
fn introspection_field(sizes: &SchemaSizes, type_name: &str, field: &str) -> Option<(&'static str, usize)> {
    Some(match (type_name, field) {
        (_, "__schema") => ("__Schema", 1),
        (_, "__type") => ("__Type", 1),
        ("__Schema", "types") => ("__Type", sizes.types),
        ("__Schema", "directives") => ("__Directive", 8),
        ("__Schema", _) => ("__Type", 1),
        ("__Type", "fields") => ("__Field", sizes.fields_per_type),
        ("__Type", "inputFields") => ("__InputValue", sizes.input_fields_per_type),
        ("__Type", "enumValues") => ("__EnumValue", sizes.values_per_type),
        ("__Type", "interfaces" | "possibleTypes") => ("__Type", 1),
        ("__Type", "ofType") => ("__Type", 1),
        ("__Field" | "__Directive", "args") => ("__InputValue", sizes.args_per_field),
        ("__Field" | "__InputValue", "type") => ("__Type", 1),
        _ => return None,
    })
}

impl Walk<'_> {
    fn selection_set(&self, type_name: &str, set: &SelectionSet) -> Measure {
        let mut total = NOTHING;
        for item in &set.items {
            self.visits.set(self.visits.get() + 1);
            if self.visits.get() > MAX_VISITS {
                return Measure {
                    cost: usize::MAX,
                    ..total
                };
            }
            let measure = match &item.node {
                Selection::Field(field) => self.field(type_name, &field.node),
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
            total = beside(total, measure);
        }
        total
    }

    /// A fragment's measure, taken once per operation however often it is spread.
    fn fragment(&self, name: &Name) -> Measure {
        if let Some(known) = self.fragments.borrow().get(name) {
            return known.unwrap_or(NOTHING);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return NOTHING;
        };
        self.fragments.borrow_mut().insert(name.clone(), None);
        let measure = self.selection_set(
            fragment.node.type_condition.node.on.node.as_str(),
            &fragment.node.selection_set.node,
        );
        self.fragments.borrow_mut().insert(name.clone(), Some(measure));
        measure
    }

    fn field(&self, type_name: &str, field: &async_graphql::parser::types::Field) -> Measure {
        let name = field.name.node.as_str();
        if let Some((returns, rows)) = introspection_field(&self.model.sizes, type_name, name) {
            let child = self.selection_set(returns, &field.selection_set.node);
            let leads_to_types = matches!(name, "fields" | "inputFields" | "interfaces" | "possibleTypes");
            let mut cost = 1usize.saturating_add(rows.saturating_mul(child.cost));
            if !type_name.starts_with("__") {
                // The entry into introspection: it is answered from memory, without a statement,
                // so its nodes count a quarter of what the database's do.
                cost = cost.div_ceil(INTROSPECTION_DISCOUNT);
            }
            return Measure {
                cost,
                introspection_roots: child.introspection_roots + usize::from(matches!(name, "__schema" | "__type")),
                // Introspection does not count towards depth.
                depth: 0,
                introspection_nesting: child.introspection_nesting + usize::from(leads_to_types),
            };
        }
        if type_name.starts_with("__") {
            // A leaf of an introspection type (`name`, `kind`, `description`, ...).
            return Measure { cost: 1, ..NOTHING };
        }
        let shape = self.model.fields.get(type_name).and_then(|f| f.get(name));
        let child = match shape {
            Some(shape) => self.selection_set(&shape.returns, &field.selection_set.node),
            None => self.selection_set("", &field.selection_set.node),
        };
        Measure {
            cost: self.price(type_name, name, shape, field, child.cost),
            depth: child.depth + 1,
            introspection_nesting: child.introspection_nesting,
            introspection_roots: child.introspection_roots,
        }
    }

    fn price(
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
        // A preview reads every member's access twice and runs a write it rolls back; an import
        // (a dry run is a preview) is priced alike.
        let previews = (type_name == self.model.query_root && name == "previewRoleChange")
            || (type_name == self.model.mutation_root && name == "importRoles");
        if previews {
            return PREVIEW.saturating_add(child.saturating_mul(DEFAULT_PAGE));
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
                    .cloned()
                    .or_else(|| self.defaults.borrow().get(&variable).cloned())
                    .ok_or(())
            })
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "schema { query: Query }
        type Query { organization(slug: String!): Organization nodes(ids: [ID!]!): [Node]! viewer: User! }
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
        let model = CostModel::from_sdl(SDL, 50_000, 12);
        let document = async_graphql::parser::parse_query(query).expect("query");
        model.cost(&document, &Variables::from_json(variables))
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
            document.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        document.push_str(" fragment F40 on Query { viewer { apiTokens { id } } }");
        let started = std::time::Instant::now();
        let priced = cost(&document, serde_json::json!({}));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            priced > 50_000,
            "a fragment bomb is priced as what it expands to: {priced}"
        );
        let cycle = "query { ...F } fragment F on Query { ...F ...F viewer { apiTokens { id } } }";
        let started = std::time::Instant::now();
        cost(cycle, serde_json::json!({}));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn root_fields_are_counted_through_fragments_in_the_documents_length() {
        let mut document = String::from("mutation { ...F0 a: viewer { id } }");
        for i in 0..40 {
            document.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        document.push_str(" fragment F40 on Query { b: viewer { id } }");
        let parsed = async_graphql::parser::parse_query(&document).expect("query");
        let async_graphql::parser::types::DocumentOperations::Single(operation) = &parsed.operations else {
            panic!("one operation")
        };
        let started = std::time::Instant::now();
        let fields = root_field_count(&parsed, &operation.node.selection_set.node);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(fields, (1usize << 40) + 1);
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
