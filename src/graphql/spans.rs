//! Spans for traces (see [`crate::telemetry`]): one for the operation, one for each root field
//! and one for each paged field, named `Type.field`. Installed on the schemas only while traces
//! are exported: any extension makes every field's resolution pass through it.
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo};
use async_graphql::{Response, ServerResult, Value};
use tracing::Instrument;

use crate::telemetry::TARGET;

pub struct FieldSpans;

impl ExtensionFactory for FieldSpans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldSpans)
    }
}

#[async_trait::async_trait]
impl Extension for FieldSpans {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // A name as the document spells it (a GraphQL name), cut to a length a trace view shows.
        let name: String = operation_name.unwrap_or("(anonymous)").chars().take(64).collect();
        let span = tracing::info_span!(
            target: TARGET,
            "graphql.execute",
            otel.name = %format_args!("graphql {name}"),
            graphql.operation.name = %name,
            graphql.errors = tracing::field::Empty,
        );
        let response = next.run(ctx, operation_name).instrument(span.clone()).await;
        span.record("graphql.errors", response.errors.len());
        response
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let of_note = !info.is_for_introspection
            && (info.path_node.parent.is_none() || info.return_type.trim_end_matches('!').ends_with("Connection"));
        if !of_note {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            target: TARGET,
            "graphql.resolve",
            otel.name = %format_args!("{}.{}", info.parent_type, info.name),
            graphql.field.path = %info.path_node,
        );
        next.run(ctx, info).instrument(span).await
    }
}
