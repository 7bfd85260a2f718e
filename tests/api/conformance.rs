//! Checks a response against the schema and the operation that produced it, as the GraphQL
//! specification requires of any response: every selected field present (unless an ancestor is
//! null), no null where the schema says non-null (an error there must null the parent instead),
//! and keys in the order the selection collected them. The harness runs it on every response
//! the suite produces; set GUILDHALL_CONFORMANCE_LOG to a file to count them (one line each).
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, Positioned};
use serde_json::Value;

/// Responses checked by this test process.
pub static CHECKED: AtomicUsize = AtomicUsize::new(0);

/// What the checker knows of one type of the schema.
#[derive(Default)]
struct TypeInfo {
    fields: HashMap<String, Type>,
    /// Interfaces it implements (objects), or nothing.
    implements: Vec<String>,
    /// Whether it is an interface or a union.
    is_abstract: bool,
}

pub struct Schema {
    types: HashMap<String, TypeInfo>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::parse(include_str!("../../schema.graphql")));

impl Schema {
    pub fn parse(sdl: &str) -> Schema {
        let document = async_graphql::parser::parse_schema(sdl).expect("the schema parses");
        let mut types = HashMap::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = ty.node;
            let info = match ty.kind {
                TypeKind::Object(object) => TypeInfo {
                    fields: object
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect(),
                    implements: object.implements.into_iter().map(|i| i.node.to_string()).collect(),
                    is_abstract: false,
                },
                TypeKind::Interface(interface) => TypeInfo {
                    fields: interface
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect(),
                    implements: Vec::new(),
                    is_abstract: true,
                },
                TypeKind::Union(_) => TypeInfo {
                    is_abstract: true,
                    ..TypeInfo::default()
                },
                _ => TypeInfo::default(),
            };
            types.insert(ty.name.node.to_string(), info);
        }
        Schema { types }
    }

    fn field_type(&self, type_name: &str, field: &str) -> Option<Type> {
        if field == "__typename" {
            return Some(Type::new("String!").expect("type"));
        }
        if let Some(found) = self.types.get(type_name).and_then(|t| t.fields.get(field)) {
            return Some(found.clone());
        }
        match field {
            "__schema" => Type::new("__Schema!"),
            "__type" => Type::new("__Type"),
            _ => None,
        }
    }

    /// Whether a fragment on `condition` always applies to a value of static type `on`.
    fn always_applies(&self, condition: &str, on: &str) -> bool {
        condition == on
            || self
                .types
                .get(on)
                .is_some_and(|t| !t.is_abstract && t.implements.iter().any(|i| i == condition))
    }
}

/// One response key of a selection: the fields merged under it, the type that declares them, and
/// whether it must be present (`false` for fields of a fragment on a narrower type than the
/// value's static type, which apply only to some values).
struct Collected<'a> {
    key: String,
    fields: Vec<&'a Field>,
    declared_on: String,
    required: bool,
}

struct Check<'a> {
    schema: &'a Schema,
    document: &'a ExecutableDocument,
    variables: &'a Value,
    problems: Vec<String>,
}

impl<'a> Check<'a> {
    fn included(&self, directives: &[Positioned<async_graphql::parser::types::Directive>]) -> bool {
        for directive in directives {
            let name = directive.node.name.node.as_str();
            if name != "skip" && name != "include" {
                continue;
            }
            let condition = directive
                .node
                .get_argument("if")
                .map(|value| match &value.node {
                    async_graphql_value::Value::Boolean(b) => *b,
                    async_graphql_value::Value::Variable(v) => self.variables[v.as_str()].as_bool().unwrap_or(false),
                    _ => false,
                })
                .unwrap_or(false);
            if (name == "skip" && condition) || (name == "include" && !condition) {
                return false;
            }
        }
        true
    }

    fn collect(&self, on: &str, set: &'a SelectionSet, required: bool, out: &mut Vec<Collected<'a>>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if !self.included(&field.node.directives) {
                        continue;
                    }
                    let key = field
                        .node
                        .alias
                        .as_ref()
                        .map(|a| a.node.to_string())
                        .unwrap_or_else(|| field.node.name.node.to_string());
                    if let Some(existing) = out.iter_mut().find(|c| c.key == key) {
                        existing.fields.push(&field.node);
                        existing.required |= required;
                    } else {
                        out.push(Collected {
                            key,
                            fields: vec![&field.node],
                            declared_on: on.to_owned(),
                            required,
                        });
                    }
                }
                Selection::InlineFragment(fragment) => {
                    if !self.included(&fragment.node.directives) {
                        continue;
                    }
                    let condition = fragment
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.to_string())
                        .unwrap_or_else(|| on.to_owned());
                    let applies = required && self.schema.always_applies(&condition, on);
                    let declared = if applies { on.to_owned() } else { condition };
                    self.collect(&declared, &fragment.node.selection_set.node, applies, out);
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.node.directives) {
                        continue;
                    }
                    let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) else {
                        continue;
                    };
                    let condition = fragment.node.type_condition.node.on.node.to_string();
                    let applies = required && self.schema.always_applies(&condition, on);
                    let declared = if applies { on.to_owned() } else { condition };
                    self.collect(&declared, &fragment.node.selection_set.node, applies, out);
                }
            }
        }
    }

    fn object(&mut self, path: &str, on: &str, sets: &[&'a SelectionSet], value: &Value) {
        let Some(object) = value.as_object() else {
            self.problems
                .push(format!("{path}: expected an object of type {on}, found {value}"));
            return;
        };
        let mut collected = Vec::new();
        for set in sets {
            self.collect(on, set, true, &mut collected);
        }
        // Keys in the order their fields were first selected.
        let order: Vec<&str> = collected.iter().map(|c| c.key.as_str()).collect();
        let mut last = 0;
        for key in object.keys() {
            match order.iter().position(|k| k == key) {
                Some(at) if at >= last => last = at,
                Some(_) => self.problems.push(format!(
                    "{path}: key `{key}` is out of selection order ({:?} selected as {order:?})",
                    object.keys().collect::<Vec<_>>()
                )),
                None => self.problems.push(format!("{path}: key `{key}` was not selected")),
            }
        }
        for entry in &collected {
            let field_path = format!("{path}.{}", entry.key);
            let Some(found) = object.get(&entry.key) else {
                if entry.required {
                    self.problems.push(format!("{field_path}: selected but missing"));
                }
                continue;
            };
            let name = entry.fields[0].name.node.as_str();
            let Some(ty) = self.schema.field_type(&entry.declared_on, name) else {
                // Introspection's own types are not in the SDL: not checked below this point.
                continue;
            };
            let children: Vec<&SelectionSet> = entry.fields.iter().map(|f| &f.selection_set.node).collect();
            self.value(&field_path, &ty, &children, found);
        }
    }

    fn value(&mut self, path: &str, ty: &Type, sets: &[&'a SelectionSet], value: &Value) {
        if value.is_null() {
            if !ty.nullable {
                self.problems.push(format!("{path}: null where the schema says {ty}"));
            }
            return;
        }
        match &ty.base {
            BaseType::List(inner) => match value.as_array() {
                Some(items) => {
                    for (index, item) in items.iter().enumerate() {
                        self.value(&format!("{path}[{index}]"), inner, sets, item);
                    }
                }
                None => self.problems.push(format!("{path}: expected a list, found {value}")),
            },
            BaseType::Named(name) => {
                let composite = self
                    .schema
                    .types
                    .get(name.as_str())
                    .is_some_and(|t| t.is_abstract || !t.fields.is_empty())
                    || name.starts_with("__");
                if composite && sets.iter().any(|s| !s.items.is_empty()) {
                    if name.starts_with("__") {
                        return;
                    }
                    self.object(path, name.as_str(), sets, value);
                }
            }
        }
    }
}

/// The problems of one response to `query`, or none. A document that does not parse, or names
/// no single operation, is not checked (its response has no data).
pub fn problems(
    schema: &Schema,
    query: &str,
    operation_name: Option<&str>,
    variables: &Value,
    response: &Value,
) -> Vec<String> {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return Vec::new();
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => &op.node,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(&Name::new(name)) {
            Some(op) => &op.node,
            None => return Vec::new(),
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => &op.node,
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let root = match operation.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    let mut check = Check {
        schema,
        document: &document,
        variables,
        problems: Vec::new(),
    };
    match response.get("data") {
        None | Some(Value::Null) => {
            if response.get("data").is_none() && response.get("errors").is_none() {
                check.problems.push("a response has `data` or `errors`".to_owned());
            }
        }
        Some(data) => check.object("data", root, &[&operation.selection_set.node], data),
    }
    check.problems
}

/// Checks a response of the served schema; panics naming every problem.
pub fn check(query: &str, operation_name: Option<&str>, variables: &Value, response: &Value) {
    let found = problems(&SCHEMA, query, operation_name, variables, response);
    assert!(
        found.is_empty(),
        "the response breaks the GraphQL specification:\n  {}\nquery: {query}\nresponse: {response}",
        found.join("\n  ")
    );
    CHECKED.fetch_add(1, Ordering::Relaxed);
    if let Ok(path) = std::env::var("GUILDHALL_CONFORMANCE_LOG")
        && !path.is_empty()
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(file, "checked");
    }
}

/// Checks each answer of a request body (one operation or a batch) against its operation.
pub fn check_body(request: &Value, response: &Value) {
    match (request, response) {
        (Value::Array(requests), Value::Array(responses)) => {
            for (request, response) in requests.iter().zip(responses) {
                check_body(request, response);
            }
        }
        (Value::Object(_), Value::Object(_)) => {
            let Some(query) = request["query"].as_str() else { return };
            check(
                query,
                request["operationName"].as_str(),
                &request["variables"],
                response,
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SDL: &str = "
        type Query { viewer: User! organization(slug: String!): Organization node(id: ID!): Node }
        interface Node { id: ID! }
        type User implements Node { id: ID! name: String! tokens: [Token!]! }
        type Token implements Node { id: ID! name: String! }
        type Organization implements Node { id: ID! members: [User!]! name: String }";

    fn found(query: &str, response: Value) -> Vec<String> {
        problems(&Schema::parse(SDL), query, None, &json!({ "on": false }), &response)
    }

    #[test]
    fn a_conforming_response_has_no_problems() {
        let query = "query($on: Boolean!) { viewer { id ...U } org: organization(slug: \"a\") { name members { name @include(if: $on) id } } node(id: \"x\") { id ... on Token { name } } }
                     fragment U on User { name tokens { id } }";
        let response = json!({ "data": {
            "viewer": { "id": "1", "name": "Ada", "tokens": [] },
            "org": null,
            "node": { "id": "x" }
        }});
        assert_eq!(found(query, response), Vec::<String>::new());
    }

    #[test]
    fn missing_fields_nulls_in_non_null_places_and_disorder_are_found() {
        let missing = found(
            "{ organization(slug: \"a\") { name members { id } } }",
            json!({ "data": { "organization": { "name": "A" } } }),
        );
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].contains("members: selected but missing"), "{missing:?}");

        let null = found("{ viewer { id name } }", json!({ "data": { "viewer": null } }));
        assert!(null[0].contains("null where the schema says User!"), "{null:?}");

        let disorder = found(
            "{ viewer { id name } }",
            json!({ "data": { "viewer": { "name": "Ada", "id": "1" } } }),
        );
        assert!(disorder[0].contains("out of selection order"), "{disorder:?}");

        let inner_null = found(
            "{ viewer { tokens { id } } }",
            json!({ "data": { "viewer": { "tokens": [null] } } }),
        );
        assert!(inner_null[0].contains("tokens[0]"), "{inner_null:?}");

        let skipped_present = found(
            "query($on: Boolean!) { viewer { id name @include(if: $on) } }",
            json!({ "data": { "viewer": { "id": "1", "name": "Ada" } } }),
        );
        assert!(skipped_present[0].contains("was not selected"), "{skipped_present:?}");
    }
}
