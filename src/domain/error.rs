//! The one error type of the domain; each variant knows its stable `extensions.code`.
use sea_orm::DbErr;

#[derive(Clone, Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{message}")]
    Forbidden { message: String, key: Option<String> },
    /// A refusal inside an organization, kept apart so that it can be audited.
    #[error("{0}")]
    ForbiddenIn(Box<DomainError>, uuid::Uuid),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
        /// The object already there, as (type name, id).
        existing: Option<(&'static str, uuid::Uuid)>,
    },
    #[error("{message}")]
    LimitExceeded { limit: String, message: String },
    #[error("{0}")]
    LastOwner(String),
    /// The password was right and a second factor is due: `completeLogIn` with this challenge.
    #[error(
        "a code from your authenticator app (or a recovery code) is needed: call `completeLogIn` with the challenge"
    )]
    TwoFactorRequired { challenge: String },
    /// The organization requires two-factor sign-in and the caller's account has none yet.
    #[error("{0}")]
    TwoFactorSetupRequired(String),
    /// The account's address is not verified yet, and this needs it to be.
    #[error("{0}")]
    EmailNotVerified(String),
    #[error("{0}")]
    RoleInUse(String),
    #[error("{0}")]
    KeychainInUse(String),
    #[error("the invitation has expired")]
    InvitationExpired,
    #[error("the invitation is not valid")]
    InvitationInvalid,
    #[error("too many attempts; try again in {retry_after_seconds} seconds")]
    RateLimited { retry_after_seconds: i64 },
    /// The database could not be reached or stopped answering (a restart, a failover, a full
    /// pool): worth retrying. Detail for the log only.
    #[error("the service cannot reach its database just now; retry shortly")]
    Unavailable(String),
    /// Detail for the log only; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// The value of `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Unauthenticated(_) => "UNAUTHENTICATED",
            DomainError::Forbidden { .. } => "FORBIDDEN",
            DomainError::ForbiddenIn(inner, _) => inner.code(),
            DomainError::NotFound(_) => "NOT_FOUND",
            DomainError::BadUserInput { .. } => "BAD_USER_INPUT",
            DomainError::Conflict { .. } => "CONFLICT",
            DomainError::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            DomainError::LastOwner(_) => "LAST_OWNER",
            DomainError::EmailNotVerified(_) => "EMAIL_NOT_VERIFIED",
            DomainError::TwoFactorRequired { .. } | DomainError::TwoFactorSetupRequired(_) => "TWO_FACTOR_REQUIRED",
            DomainError::RoleInUse(_) => "ROLE_IN_USE",
            DomainError::KeychainInUse(_) => "KEYCHAIN_IN_USE",
            DomainError::InvitationExpired => "INVITATION_EXPIRED",
            DomainError::InvitationInvalid => "INVITATION_INVALID",
            DomainError::RateLimited { .. } => "RATE_LIMITED",
            DomainError::Unavailable(_) => "UNAVAILABLE",
            DomainError::Internal(_) => "INTERNAL",
        }
    }

    pub fn bad_input(field: &str, message: impl Into<String>) -> DomainError {
        DomainError::BadUserInput {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn forbidden_key(key: &str) -> DomainError {
        DomainError::Forbidden {
            message: format!("this requires the key `{key}`"),
            key: Some(key.to_owned()),
        }
    }

    pub fn conflict(field: Option<&str>, message: impl Into<String>) -> DomainError {
        DomainError::Conflict {
            message: message.into(),
            field: field.map(str::to_owned),
            existing: None,
        }
    }

    pub fn two_factor_setup_required() -> DomainError {
        DomainError::TwoFactorSetupRequired(
            "this organization requires two-factor sign-in: turn it on for your account \
             (startTwoFactorEnrollment, then confirmTwoFactorEnrollment), or sign in through \
             your identity provider with a second factor, to continue"
                .to_owned(),
        )
    }

    pub fn unauthenticated() -> DomainError {
        DomainError::Unauthenticated("authentication required".to_owned())
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        DomainError::from(&err)
    }
}

/// UNAVAILABLE when the database is out of reach, else INTERNAL; the detail is for the log.
impl From<&DbErr> for DomainError {
    fn from(err: &DbErr) -> Self {
        crate::metrics::note_database_error(err);
        if is_unavailable(err) {
            DomainError::Unavailable(format!("database: {err}"))
        } else {
            DomainError::Internal(format!("database: {err}"))
        }
    }
}

/// Whether a database error says the database is out of reach rather than that the statement
/// was wrong: no connection could be had in time, the connection broke, the server is shutting
/// down, starting up or refusing connections (SQLSTATE classes 08 and 57P), has too many
/// connections (53300), or is a read-only standby, as right after a failover (25006).
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "25006"
        }),
        _ => false,
    }
}

/// Whether a database error is a unique-constraint violation (a concurrent or repeated insert).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

pub type DomainResult<T> = Result<T, DomainError>;
