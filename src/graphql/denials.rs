//! Refused mutations in the audit log, as an async-graphql extension on the schema that runs
//! mutations. A mutation refused for a missing key inside an organization writes an
//! `authorization.denied` event naming the mutation and the key, in its own transaction (the
//! refused change was rolled back with its own). Queries run on a schema without extensions: any
//! extension makes every field's resolution go through the extension chain, and a refused read
//! changes nothing worth an event.
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{PathSegment, Response};

use crate::domain::{App, DomainError, audit};

use super::context::RequestState;

/// Builds the extension for each mutation request.
pub struct DenialAudit;

impl ExtensionFactory for DenialAudit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DenialAuditExtension)
    }
}

struct DenialAuditExtension;

#[async_trait::async_trait]
impl Extension for DenialAuditExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let (Some(app), Some(request)) = (ctx.data_opt::<Arc<App>>(), ctx.data_opt::<Arc<RequestState>>()) else {
            return response;
        };
        let Some(principal) = &request.principal else {
            return response;
        };
        for error in &response.errors {
            // Every root field of this schema's operations is a mutation.
            let Some(PathSegment::Field(field)) = error.path.first() else {
                continue;
            };
            let Some(DomainError::ForbiddenIn(inner, organization_id)) =
                error.source.as_ref().and_then(|s| s.downcast_ref::<DomainError>())
            else {
                continue;
            };
            let key = match inner.as_ref() {
                DomainError::Forbidden { key, .. } => key.as_deref(),
                _ => None,
            };
            let actor = audit::Actor {
                user_id: Some(principal.user.id),
                token_id: principal.token.map(|t| t.id),
            };
            if let Err(err) = audit::record_denial(app, &request.meta, actor, *organization_id, field, key).await {
                tracing::error!(error = %err, "recording a refused mutation");
            }
        }
        response
    }
}
