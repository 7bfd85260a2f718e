//! The GraphQL schema: objects, guards, loaders; the transport lives in `http`.
pub mod batch;
pub mod connection;
pub mod context;
pub mod cost;
pub mod direct;
pub mod error;
pub mod guards;
pub mod ids;
pub mod loaders;
pub mod mutation;
pub mod mutation_access;
pub mod mutation_members;
pub mod mutation_tokens;
pub mod objects;
pub mod query;

use std::sync::Arc;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::domain::App;

/// Every mutation, grouped by area.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    mutation::AccountMutations,
    mutation_access::AccessMutations,
    mutation_members::MemberMutations,
    mutation_tokens::TokenMutations,
);

pub type GuildhallSchema = Schema<query::QueryRoot, MutationRoot, EmptySubscription>;

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

fn builder() -> SchemaBuilder<query::QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(query::QueryRoot, MutationRoot::default(), EmptySubscription)
}

/// The schema served to clients.
pub fn build(app: Arc<App>, limits: QueryLimits) -> GuildhallSchema {
    let mut builder = builder()
        .data(app)
        .limit_depth(limits.max_depth)
        .limit_recursive_depth(32)
        .limit_directives(8);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The cost model of the schema served to clients.
pub fn cost_model(limits: QueryLimits) -> cost::CostModel {
    cost::CostModel::from_sdl(&builder().finish().sdl(), limits.max_cost)
}

/// The SDL of the schema, sorted, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

/// Names of the root mutation fields, read once by introspecting an unrestricted schema.
pub async fn mutation_field_names() -> std::collections::HashSet<String> {
    let response = builder()
        .finish()
        .execute("{ __schema { mutationType { fields { name } } } }")
        .await
        .data
        .into_json()
        .unwrap_or_default();
    response["__schema"]["mutationType"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Default for cost::CostModel {
    /// The served schema's model at the default limit.
    fn default() -> Self {
        cost_model(QueryLimits::default())
    }
}
