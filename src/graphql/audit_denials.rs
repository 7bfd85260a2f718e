//! Records refused mutations in the audit log. The refused change was rolled back with its
//! transaction, so the denial is written on its own.
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ServerResult, Value};

use crate::domain::audit::{self, Actor};
use crate::domain::{App, DomainError};

use super::context::RequestState;

/// Adds the denial recorder to a schema.
pub struct AuditDenials;

impl ExtensionFactory for AuditDenials {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditDenialsExtension)
    }
}

struct AuditDenialsExtension;

#[async_trait::async_trait]
impl Extension for AuditDenialsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_mutation = info.parent_type == "MutationRoot";
        let mutation = info.name.to_owned();
        let result = next.run(ctx, info).await;
        if is_mutation
            && let Err(error) = &result
            && let Some(DomainError::ForbiddenIn(inner, organization_id)) =
                error.source.as_ref().and_then(|s| s.downcast_ref::<DomainError>())
            && let (Some(app), Some(state)) = (ctx.data_opt::<Arc<App>>(), ctx.data_opt::<Arc<RequestState>>())
            && let Some(principal) = &state.principal
        {
            let key = match inner.as_ref() {
                DomainError::Forbidden { key, .. } => key.clone(),
                _ => None,
            };
            let actor = Actor {
                user_id: Some(principal.user.id),
                token_id: principal.token.map(|t| t.id),
            };
            if let Err(err) =
                audit::record_denial(app, &state.meta, actor, *organization_id, &mutation, key.as_deref()).await
            {
                tracing::error!(error = %err, "recording a refused mutation");
            }
        }
        result
    }
}
