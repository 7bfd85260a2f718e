//! Who a caller is and what they hold, remembered between requests only for as long as the
//! database has not changed since it was read.
//!
//! Each kind is a [`Shared`] cache of the store, under its one freshness rule: a request that
//! starts after a write, in any process, never sees what the write changed as it was before.
use std::sync::Arc;

use uuid::Uuid;

use crate::authz::KeySet;
use crate::store::entities::{api_tokens, users};
use crate::store::{Shared, WriteClock};

use super::access::MemberAccess;

/// Entries kept per kind before the oldest generation's are dropped wholesale.
const MAX_ENTRIES: usize = 50_000;

/// An API token as authentication needs it.
#[derive(Clone, Debug)]
pub struct TokenHolder {
    pub token: api_tokens::Model,
    pub user: users::Model,
    pub keychain_keys: Option<KeySet>,
}

/// The shared cache of callers' standing.
pub struct Standing {
    writes: Arc<WriteClock>,
    /// (session, user) → the user, for live sessions only.
    sessions: Shared<(Uuid, Uuid), users::Model>,
    /// Digest of an API token → the token and its user.
    tokens: Shared<String, TokenHolder>,
    /// (user, organization) → the member's access without any token mask; `None` for a
    /// non-member.
    members: Shared<(Uuid, Uuid), Option<Arc<MemberAccess>>>,
}

impl Standing {
    pub fn new(writes: Arc<WriteClock>, metrics: &crate::metrics::Metrics) -> Standing {
        Standing {
            sessions: Shared::counted(&writes, MAX_ENTRIES, metrics.cache("sessions")),
            tokens: Shared::counted(&writes, MAX_ENTRIES, metrics.cache("api_tokens")),
            members: Shared::counted(&writes, MAX_ENTRIES, metrics.cache("member_access")),
            writes,
        }
    }

    /// Read this before reading the rows to be kept, and pass it to the `keep_` call.
    pub fn generation(&self) -> Option<u64> {
        self.writes.generation()
    }

    pub fn session(&self, session_id: Uuid, user_id: Uuid) -> Option<users::Model> {
        self.sessions.get(&(session_id, user_id))
    }

    pub fn keep_session(&self, read_at: Option<u64>, session_id: Uuid, user: users::Model) {
        self.sessions.put(read_at, (session_id, user.id), user);
    }

    pub fn token(&self, digest: &str) -> Option<TokenHolder> {
        self.tokens.get(digest)
    }

    pub fn keep_token(&self, read_at: Option<u64>, digest: String, holder: TokenHolder) {
        self.tokens.put(read_at, digest, holder);
    }

    /// `Some(None)`: known not to be a member; `None`: not known.
    pub fn member(&self, user_id: Uuid, organization_id: Uuid) -> Option<Option<Arc<MemberAccess>>> {
        self.members.get(&(user_id, organization_id))
    }

    pub fn keep_member(
        &self,
        read_at: Option<u64>,
        user_id: Uuid,
        organization_id: Uuid,
        access: Option<Arc<MemberAccess>>,
    ) {
        self.members.put(read_at, (user_id, organization_id), access);
    }
}
