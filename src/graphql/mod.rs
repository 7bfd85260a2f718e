//! The GraphQL schema: objects, guards, loaders; the transport lives in `http`.

/// Declares one type per mutation (`<Mutation>Input`, `<Mutation>Payload`) for mutations that
/// take or return the same fields, as the contract asks, plus the one plain struct the shared
/// code works with and conversions between them. Each named type can grow on its own later
/// without breaking the others' clients.
macro_rules! per_mutation {
    (@common $(#[$common_meta:meta])* $common:ident { $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$common_meta])*
        pub struct $common { $( pub $field: $ty ),* }
    };
    (@named $derive:ident $common:ident, $(#[$meta:meta])* $name:ident { $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(async_graphql::$derive)]
        pub struct $name { $( $(#[$field_meta])* pub $field: $ty ),* }
        impl From<$name> for $common {
            fn from(one: $name) -> Self { $common { $( $field: one.$field ),* } }
        }
        impl From<$common> for $name {
            fn from(one: $common) -> Self { $name { $( $field: one.$field ),* } }
        }
    };
    ($derive:ident, $(#[$common_meta:meta])* $common:ident $fields:tt $( $(#[$meta:meta])* $name:ident ),+ $(,)?) => {
        per_mutation!(@common $(#[$common_meta])* $common $fields);
        $( per_mutation!(@named $derive $common, $(#[$meta])* $name $fields); )+
    };
}
pub mod batch;
pub mod connection;
pub mod context;
pub mod cost;
pub mod denials;
pub mod error;
pub mod guards;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod mutation_access;
pub mod mutation_contacts;
pub mod mutation_members;
pub mod mutation_owner_safety;
pub mod mutation_self;
pub mod mutation_teams;
pub mod mutation_tokens;
pub mod preview;
pub mod query;
pub mod shape;
pub mod spans;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema, SchemaBuilder};

use crate::domain::App;

/// Every mutation, grouped by area.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::AccountMutations,
    mutation_self::SelfServiceMutations,
    mutation_access::AccessMutations,
    mutation_members::MemberMutations,
    mutation_contacts::ContactMutations,
    mutation_owner_safety::OwnerSafetyMutations,
    mutation_teams::TeamMutations,
    mutation_tokens::TokenMutations,
);

pub type GuildhallSchema = Schema<query::QueryRoot, MutationRoot, subscription::SubscriptionRoot>;

/// Limits on what one operation may ask for.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_depth: usize,
    /// Highest cost (see [`cost`]) of an operation.
    pub max_cost: usize,
    pub introspection: bool,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            max_depth: 12,
            max_cost: 50_000,
            introspection: true,
        }
    }
}

fn builder() -> SchemaBuilder<query::QueryRoot, MutationRoot, subscription::SubscriptionRoot> {
    Schema::build(
        query::QueryRoot,
        MutationRoot::default(),
        subscription::SubscriptionRoot,
    )
    .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
        "A point in time: an RFC 3339 date and time with its offset, e.g. `2026-11-25T09:30:00Z`. \
         Answers are always in UTC.",
    )
}

/// The schema that runs mutations: the served schema with the audit of refused mutations
/// ([`denials`]). Queries and subscriptions run on [`build`]'s, which has no extension.
pub fn build_for_mutations(app: Arc<App>, limits: QueryLimits) -> GuildhallSchema {
    with_limits(builder().extension(denials::DenialAudit), app, limits)
}

/// The schema served to clients.
pub fn build(app: Arc<App>, limits: QueryLimits) -> GuildhallSchema {
    with_limits(builder(), app, limits)
}

fn with_limits(
    builder: SchemaBuilder<query::QueryRoot, MutationRoot, subscription::SubscriptionRoot>,
    app: Arc<App>,
    limits: QueryLimits,
) -> GuildhallSchema {
    let mut builder = builder;
    if crate::telemetry::enabled() {
        builder = builder.extension(spans::FieldSpans);
    }
    let mut builder = builder
        .data(app)
        // Depth is measured with the cost (see `cost`), where introspection is exempt from it.
        .limit_recursive_depth(32)
        .limit_directives(8);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The cost model of the schema served to clients.
pub fn cost_model(limits: QueryLimits) -> cost::CostModel {
    cost::CostModel::from_sdl(&builder().finish().sdl(), limits.max_cost, limits.max_depth)
}

/// The operation a request runs: the one the document holds, or the one `name` picks (`None`
/// when that names none, or when several are held and no name is given; execution reports it).
pub fn selected_operation<'d>(
    document: &'d async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d async_graphql::parser::types::OperationDefinition> {
    use async_graphql::parser::types::DocumentOperations;
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name).map(|o| &o.node),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|o| &o.node)
        }
        _ => None,
    }
}

/// The SDL of the schema, sorted, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items()
            .include_specified_by(),
    )
}

impl Default for cost::CostModel {
    /// The served schema's model at the default limit.
    fn default() -> Self {
        cost_model(QueryLimits::default())
    }
}

#[cfg(test)]
mod tests {
    /// Everything a client's tools show (types, fields, arguments, input fields, enum values)
    /// carries a description.
    #[tokio::test]
    async fn every_type_field_argument_and_enum_value_is_described() {
        let query = "{ __schema { types { name description
            fields { name description args { name description } }
            inputFields { name description }
            enumValues { name description } } } }";
        let response = super::builder().finish().execute(query).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("json");
        let described = |v: &serde_json::Value| v["description"].as_str().is_some_and(|d| !d.trim().is_empty());
        let mut missing = Vec::new();
        let mut checked = 0;
        for ty in data["__schema"]["types"].as_array().expect("types") {
            let name = ty["name"].as_str().expect("name");
            if name.starts_with("__") || ["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
                continue;
            }
            checked += 1;
            if !described(ty) {
                missing.push(name.to_owned());
            }
            for field in ty["fields"].as_array().into_iter().flatten() {
                checked += 1;
                if !described(field) {
                    missing.push(format!("{name}.{}", field["name"]));
                }
                for arg in field["args"].as_array().into_iter().flatten() {
                    checked += 1;
                    if !described(arg) {
                        missing.push(format!("{name}.{}({})", field["name"], arg["name"]));
                    }
                }
            }
            for list in ["inputFields", "enumValues"] {
                for item in ty[list].as_array().into_iter().flatten() {
                    checked += 1;
                    if !described(item) {
                        missing.push(format!("{name}.{}", item["name"]));
                    }
                }
            }
        }
        assert!(checked > 400, "{checked}");
        assert!(missing.is_empty(), "undescribed: {missing:?}");
    }

    #[test]
    fn roots_are_named_as_the_specification_names_them() {
        let sdl = super::sdl();
        assert!(sdl.contains("type Query {"), "query root");
        assert!(sdl.contains("type Mutation {"), "mutation root");
        assert!(sdl.contains("type Subscription {"), "subscription root");
        assert!(!sdl.contains("QueryRoot") && !sdl.contains("MutationRoot"));
    }
}
