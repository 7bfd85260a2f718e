//! Gives each response the shape the specification requires, which async-graphql does not:
//!
//! - **Key order.** Sibling fields resolve concurrently and async-graphql inserts each as it
//!   finishes, so a field that waited for a statement lands after one that did not. The
//!   specification orders keys as the selection collected them (fragments in place).
//! - **Null propagation** ("Errors and Non-Nullability"). async-graphql drops a field whose
//!   resolver failed from its parent, even when the field is non-null. The specification nulls
//!   the nearest nullable ancestor instead (the whole `data` if none), so that a typed client
//!   never finds a field missing or a null where the schema promised none. The error itself is
//!   already in `errors`, with its path.
//!
//! The schema's own SDL is read once for field types; introspection's subtrees are only put in
//! order.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    BaseType, Directive, ExecutableDocument, Field, OperationType, Selection, SelectionSet, Type, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, Positioned, Value, Variables};

/// Field types of a schema, for shaping its responses.
#[derive(Debug, Default)]
pub struct ResponseShape {
    fields: HashMap<String, HashMap<String, Type>>,
    /// Interfaces each object type implements.
    implements: HashMap<String, Vec<String>>,
    /// Interfaces and unions.
    abstract_types: HashSet<String>,
}

/// One response key of a selection (see the specification's CollectFields).
struct Collected<'a> {
    key: Name,
    fields: Vec<&'a Field>,
    /// The type whose field it is.
    declared_on: &'a str,
    /// Whether every value of the static type has it (`false` under a fragment on a narrower
    /// type, which applies to some values only).
    required: bool,
}

/// How the objects of one static type under one merged selection are shaped: computed once per
/// response however many objects share it (a page of members shares one).
struct Plan<'a> {
    entries: Vec<Collected<'a>>,
    /// Each entry's field type (`None` for introspection fields, which are only ordered).
    types: Vec<Option<&'a Type>>,
    /// Each entry's merged selection sets.
    children: Vec<Vec<&'a SelectionSet>>,
}

/// The value at this position had to become null where the schema says non-null: the parent
/// must become null in turn.
struct NullPropagates;

impl ResponseShape {
    pub fn from_sdl(sdl: &str) -> ResponseShape {
        let mut shape = ResponseShape::default();
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return shape;
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let ty = ty.node;
            let name = ty.name.node.to_string();
            let fields = match ty.kind {
                TypeKind::Object(object) => {
                    shape.implements.insert(
                        name.clone(),
                        object.implements.iter().map(|i| i.node.to_string()).collect(),
                    );
                    object.fields
                }
                TypeKind::Interface(interface) => {
                    shape.abstract_types.insert(name.clone());
                    interface.fields
                }
                TypeKind::Union(_) => {
                    shape.abstract_types.insert(name);
                    continue;
                }
                _ => continue,
            };
            shape.fields.insert(
                name,
                fields
                    .into_iter()
                    .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                    .collect(),
            );
        }
        shape
    }

    /// Puts `data` in selection order and propagates nulls, for the operation of `document` a
    /// request ran.
    pub fn conform(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        data: &mut Value,
    ) {
        let Some(operation) = super::selected_operation(document, operation_name) else {
            return;
        };
        let root = match operation.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        let walk = Walk {
            shape: self,
            document,
            variables,
            plans: RefCell::new(HashMap::new()),
        };
        if matches!(data, Value::Object(_)) && walk.object(root, &[&operation.selection_set.node], data).is_err() {
            *data = Value::Null;
        }
    }

    fn field_type<'s>(&'s self, type_name: &str, field: &str) -> Option<&'s Type> {
        self.fields.get(type_name).and_then(|fields| fields.get(field))
    }

    /// Whether a fragment on `condition` applies to every value of static type `on`.
    fn always_applies(&self, condition: &str, on: &str) -> bool {
        condition == on
            || (!self.abstract_types.contains(on)
                && self
                    .implements
                    .get(on)
                    .is_some_and(|interfaces| interfaces.iter().any(|i| i == condition)))
    }
}

/// Plans by static type and the addresses of the merged selection sets.
type Plans<'a> = RefCell<HashMap<(&'a str, Vec<usize>), Rc<Plan<'a>>>>;

struct Walk<'a> {
    shape: &'a ResponseShape,
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    plans: Plans<'a>,
}

impl<'a> Walk<'a> {
    fn included(&self, directives: &[Positioned<Directive>]) -> bool {
        directives.iter().all(|directive| {
            let name = directive.node.name.node.as_str();
            if name != "skip" && name != "include" {
                return true;
            }
            let condition = match directive.node.get_argument("if").map(|v| &v.node) {
                Some(async_graphql_value::Value::Boolean(b)) => *b,
                Some(async_graphql_value::Value::Variable(v)) => {
                    matches!(self.variables.get(v), Some(Value::Boolean(true)))
                }
                _ => false,
            };
            (name == "skip") != condition
        })
    }

    fn collect(&self, on: &'a str, set: &'a SelectionSet, required: bool, out: &mut Vec<Collected<'a>>) {
        for item in &set.items {
            let (condition, inner, directives) = match &item.node {
                Selection::Field(field) => {
                    if !self.included(&field.node.directives) {
                        continue;
                    }
                    let key = field.node.response_key().node.clone();
                    match out.iter_mut().find(|c| c.key == key) {
                        Some(existing) => {
                            existing.fields.push(&field.node);
                            existing.required |= required;
                        }
                        None => out.push(Collected {
                            key,
                            fields: vec![&field.node],
                            declared_on: on,
                            required,
                        }),
                    }
                    continue;
                }
                Selection::InlineFragment(fragment) => (
                    fragment.node.type_condition.as_ref().map(|c| c.node.on.node.as_str()),
                    &fragment.node.selection_set.node,
                    &fragment.node.directives,
                ),
                Selection::FragmentSpread(spread) => {
                    let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node) else {
                        continue;
                    };
                    (
                        Some(fragment.node.type_condition.node.on.node.as_str()),
                        &fragment.node.selection_set.node,
                        &spread.node.directives,
                    )
                }
            };
            if !self.included(directives) {
                continue;
            }
            let condition = condition.unwrap_or(on);
            let applies = required && self.shape.always_applies(condition, on);
            let declared_on = if applies { on } else { condition };
            self.collect(declared_on, inner, applies, out);
        }
    }

    /// The plan for objects of static type `on` under `sets`, made once per response.
    fn plan(&self, on: &'a str, sets: &[&'a SelectionSet]) -> Rc<Plan<'a>> {
        let key = (
            on,
            sets.iter()
                .map(|s| *s as *const SelectionSet as usize)
                .collect::<Vec<_>>(),
        );
        if let Some(plan) = self.plans.borrow().get(&key) {
            return plan.clone();
        }
        let mut entries = Vec::new();
        for set in sets {
            self.collect(on, set, true, &mut entries);
        }
        let types = entries
            .iter()
            .map(|e| self.shape.field_type(e.declared_on, e.fields[0].name.node.as_str()))
            .collect();
        let children = entries
            .iter()
            .map(|e| e.fields.iter().map(|f| &f.selection_set.node).collect())
            .collect();
        let plan = Rc::new(Plan {
            entries,
            types,
            children,
        });
        self.plans.borrow_mut().insert(key, plan.clone());
        plan
    }

    /// Orders an object's keys and completes its fields; `Err` when it must become null.
    fn object(&self, on: &'a str, sets: &[&'a SelectionSet], value: &mut Value) -> Result<(), NullPropagates> {
        let Value::Object(map) = value else {
            return Ok(());
        };
        let plan = self.plan(on, sets);
        if map.len() == plan.entries.len() {
            // Every selected key is there (the usual case): sort the entries in place, then walk
            // them side by side with the plan.
            let in_order = map.keys().zip(&plan.entries).all(|(key, entry)| *key == entry.key);
            if !in_order {
                let position = |key: &Name| plan.entries.iter().position(|e| e.key == *key).unwrap_or(usize::MAX);
                map.sort_unstable_by(|a, _, b, _| position(a).cmp(&position(b)));
            }
            if map.keys().zip(&plan.entries).all(|(key, entry)| *key == entry.key) {
                for (index, child) in map.values_mut().enumerate() {
                    self.child(&plan, index, child)?;
                }
                return Ok(());
            }
        }
        // Some key is missing (a failed field) or unexpected: rebuild in selection order.
        let mut old = std::mem::take(map);
        let mut ordered = IndexMap::with_capacity(plan.entries.len());
        for (index, entry) in plan.entries.iter().enumerate() {
            match old.swap_remove(&entry.key) {
                Some(child) => {
                    ordered.insert(entry.key.clone(), child);
                }
                None => {
                    if entry.required && !entry.fields[0].name.node.starts_with("__") {
                        match plan.types[index] {
                            // A failed nullable field is present as null.
                            Some(ty) if ty.nullable => {
                                ordered.insert(entry.key.clone(), Value::Null);
                            }
                            // A failed non-null field nulls this object.
                            Some(_) => return Err(NullPropagates),
                            None => {}
                        }
                    }
                }
            }
        }
        // Anything not collected (there should be nothing) keeps its place at the end.
        ordered.extend(old);
        *map = ordered;
        for (index, entry) in plan.entries.iter().enumerate() {
            let Some(child) = map.get_mut(&entry.key) else { continue };
            self.child(&plan, index, child)?;
        }
        Ok(())
    }

    /// Completes the value of a plan's entry. An entry collected only from fragments on
    /// narrower types than the object's static one (`... on Membership` under a `Node`) may
    /// merge fields of several types under one key, and which applied is not known here: its
    /// value is only put in order, never nulled.
    fn child(&self, plan: &Plan<'a>, index: usize, child: &mut Value) -> Result<(), NullPropagates> {
        match plan.types[index] {
            Some(ty) if plan.entries[index].required => self.complete(ty, &plan.children[index], child),
            // Introspection, or fields of fragments on narrower types: only ordered.
            _ => {
                self.order_only(&plan.children[index], child);
                Ok(())
            }
        }
    }

    /// Completes a value of type `ty`; `Err` when it had to become null where `ty` is non-null.
    fn complete(&self, ty: &'a Type, sets: &[&'a SelectionSet], value: &mut Value) -> Result<(), NullPropagates> {
        let fits = match (&ty.base, &mut *value) {
            (_, Value::Null) => false,
            (BaseType::List(inner), Value::List(items)) => {
                items.iter_mut().all(|item| self.complete(inner, sets, item).is_ok())
            }
            (BaseType::Named(name), Value::Object(_)) => self.object(name.as_str(), sets, value).is_ok(),
            _ => true,
        };
        if fits {
            return Ok(());
        }
        *value = Value::Null;
        if ty.nullable { Ok(()) } else { Err(NullPropagates) }
    }

    /// Orders keys below a field whose type the SDL does not describe (introspection).
    fn order_only(&self, sets: &[&'a SelectionSet], value: &mut Value) {
        match value {
            Value::List(items) => items.iter_mut().for_each(|item| self.order_only(sets, item)),
            Value::Object(map) => {
                // Introspection types are concrete: every fragment on them applies.
                let plan = self.plan("", sets);
                let in_order = map.len() == plan.entries.len()
                    && map.keys().zip(&plan.entries).all(|(key, entry)| *key == entry.key);
                if !in_order {
                    let mut old = std::mem::take(map);
                    let mut ordered = IndexMap::with_capacity(old.len());
                    for entry in &plan.entries {
                        if let Some(child) = old.swap_remove(&entry.key) {
                            ordered.insert(entry.key.clone(), child);
                        }
                    }
                    ordered.extend(old);
                    *map = ordered;
                }
                for (index, entry) in plan.entries.iter().enumerate() {
                    if let Some(child) = map.get_mut(&entry.key) {
                        self.order_only(&plan.children[index], child);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = "
        type Query { viewer: User! organization(slug: String!): Organization node(id: ID!): Node }
        interface Node { id: ID! }
        type User implements Node { id: ID! name: String! tokens: [Token!]! }
        type Token implements Node { id: ID! name: String! }
        type Organization implements Node { id: ID! members: [User!]! name: String }";

    fn shaped(query: &str, data: serde_json::Value) -> serde_json::Value {
        let shape = ResponseShape::from_sdl(SDL);
        let document = async_graphql::parser::parse_query(query).expect("query");
        let mut value = Value::from_json(data).expect("value");
        shape.conform(&document, None, &Variables::default(), &mut value);
        value.into_json().expect("json")
    }

    fn keys(value: &serde_json::Value) -> Vec<String> {
        value.as_object().expect("object").keys().cloned().collect()
    }

    #[test]
    fn keys_follow_the_selection_through_fragments_and_aliases() {
        let query = "{ b: viewer { name ...F id } a: organization(slug: \"x\") { name } } fragment F on User { tokens { name id } }";
        let out = shaped(
            query,
            serde_json::json!({ "a": { "name": "A" }, "b": { "id": "1", "tokens": [{ "id": "t", "name": "T" }], "name": "Ada" } }),
        );
        assert_eq!(keys(&out), ["b", "a"]);
        assert_eq!(keys(&out["b"]), ["name", "tokens", "id"]);
        assert_eq!(keys(&out["b"]["tokens"][0]), ["name", "id"]);
    }

    #[test]
    fn a_failed_non_null_field_nulls_its_nearest_nullable_ancestor() {
        // `members` failed (absent): the organization, nullable, becomes null; the rest stays.
        let out = shaped(
            "{ viewer { id } organization(slug: \"x\") { name members { id } } }",
            serde_json::json!({ "viewer": { "id": "1" }, "organization": { "name": "A" } }),
        );
        assert_eq!(
            out,
            serde_json::json!({ "viewer": { "id": "1" }, "organization": null })
        );
        // A failed nullable field is present as null.
        let out = shaped(
            "{ organization(slug: \"x\") { id name } }",
            serde_json::json!({ "organization": { "id": "o" } }),
        );
        assert_eq!(out, serde_json::json!({ "organization": { "id": "o", "name": null } }));
        // With no nullable ancestor, `data` itself is null.
        let out = shaped("{ viewer { id name } }", serde_json::json!({ "viewer": { "id": "1" } }));
        assert_eq!(out, serde_json::Value::Null);
        let out = shaped(
            "{ viewer { tokens { id } } }",
            serde_json::json!({ "viewer": { "tokens": [null] } }),
        );
        assert_eq!(out, serde_json::Value::Null);
    }

    #[test]
    fn fields_merged_from_fragments_on_different_types_are_never_nulled() {
        // `organization` is non-null on Organization... here both fragments name a field of the
        // same key with different types; the value matches one of them.
        let sdl = "type Query { node(id: ID!): Node }
            interface Node { id: ID! }
            type Membership implements Node { id: ID! organization: Org! }
            type Token implements Node { id: ID! organization: Org }
            type Org { id: ID! name: String! }";
        let shape = ResponseShape::from_sdl(sdl);
        let query = "{ node(id: \"x\") { __typename ... on Membership { organization { name } } ... on Token { organization { id } } } }";
        let document = async_graphql::parser::parse_query(query).expect("query");
        let mut value =
            Value::from_json(serde_json::json!({ "node": { "organization": null, "__typename": "Token" } }))
                .expect("value");
        shape.conform(&document, None, &Variables::default(), &mut value);
        assert_eq!(
            value.into_json().expect("json"),
            serde_json::json!({ "node": { "__typename": "Token", "organization": null } })
        );
    }

    #[test]
    fn fields_of_fragments_on_other_types_are_not_required() {
        let out = shaped(
            "{ node(id: \"x\") { id ... on Token { name } } }",
            serde_json::json!({ "node": { "id": "x" } }),
        );
        assert_eq!(out, serde_json::json!({ "node": { "id": "x" } }));
    }
}
