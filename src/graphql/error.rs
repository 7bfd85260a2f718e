//! The one place where domain errors become GraphQL errors with `extensions.code`.
use async_graphql::ErrorExtensions;

use crate::domain::DomainError;

/// A resolver error. It deliberately does not implement `Display`, so async-graphql's blanket
/// conversion (which copies any message to the client) can never apply to it.
#[derive(Clone, Debug)]
pub struct ApiError(pub DomainError);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError(err)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError(err.into())
    }
}

/// Message shown for INTERNAL errors; the detail goes to the log under the request id.
pub const INTERNAL_MESSAGE: &str = "an internal error occurred; quote the request id when reporting it";

impl From<ApiError> for async_graphql::Error {
    fn from(ApiError(original): ApiError) -> Self {
        let err = match &original {
            DomainError::ForbiddenIn(inner, _) => (**inner).clone(),
            other => other.clone(),
        };
        let message = match &err {
            DomainError::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                INTERNAL_MESSAGE.to_owned()
            }
            DomainError::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "database unavailable");
                err.to_string()
            }
            other => other.to_string(),
        };
        let mut error = async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", err.code());
            match &err {
                DomainError::BadUserInput { field, .. } => ext.set("field", field.as_str()),
                DomainError::Conflict { field, existing, .. } => {
                    if let Some(field) = field {
                        ext.set("field", field.as_str());
                    }
                    if let Some(id) = existing
                        .and_then(|(kind, id)| super::ids::NodeKind::parse(kind).map(|k| super::ids::encode(k, id)))
                    {
                        ext.set("existingId", id.0);
                    }
                }
                DomainError::Forbidden { key: Some(key), .. } => ext.set("key", key.as_str()),
                DomainError::LimitExceeded { limit, .. } => ext.set("limit", limit.as_str()),
                DomainError::RateLimited { retry_after_seconds } => ext.set("retryAfterSeconds", *retry_after_seconds),
                DomainError::TwoFactorRequired { challenge } => ext.set("challenge", challenge.as_str()),
                _ => {}
            }
        });
        // Kept for the audit extension, which records refused mutations.
        error.source = Some(std::sync::Arc::new(original));
        error
    }
}
