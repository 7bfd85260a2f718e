//! Access tokens: short-lived HS256 JWTs bound to a session and to the user's token version.
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::DomainError;

pub const ISSUER: &str = "guildhall";
pub const AUDIENCE: &str = "guildhall-api";
const ACCESS_TYPE: &str = "access";
/// Clock skew tolerated between servers.
const LEEWAY_SECONDS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// Token type; only `access` is accepted as a bearer credential.
    pub typ: String,
    /// The user's token version at issue; "log out everywhere" increments it.
    pub ver: i64,
    /// The session (refresh-token family) this token belongs to.
    pub sid: String,
}

/// Signs and verifies access tokens with the server's secret.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Keys the derivation of a refresh token's successor (see [`AccessTokens::successor`]).
    successor_key: Vec<u8>,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedAccess {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub version: i64,
}

impl AccessTokens {
    /// The refresh token that replaces `presented` when it is rotated: a keyed hash of it, so
    /// the same successor can be handed out again when two tabs refresh at once, and nobody
    /// without the server's secret can compute it.
    pub fn successor(&self, prefix: &str, presented: &str) -> String {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.successor_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(presented.as_bytes());
        let bytes = mac.finalize().into_bytes();
        format!(
            "{prefix}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    pub fn new(secret: &[u8]) -> AccessTokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECONDS;
        // Expiry and not-before are judged against the service's clock in `verify`, the clock
        // that set them, rather than the library's reading of the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        AccessTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            successor_key: [b"refresh-successor:".as_slice(), secret].concat(),
        }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        version: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, DomainError> {
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_string(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            typ: ACCESS_TYPE.to_owned(),
            ver: version,
            sid: session_id.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Internal(format!("signing an access token: {e}")))
    }

    /// Checks signature, algorithm, issuer, audience, token type, and expiry and not-before at
    /// `now` (with a few seconds' leeway for clocks of other processes).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedAccess, DomainError> {
        let invalid = || DomainError::Unauthenticated("the access token is invalid or expired".to_owned());
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).map_err(|_| invalid())?;
        let claims = data.claims;
        let (now, leeway) = (now.timestamp(), LEEWAY_SECONDS as i64);
        if claims.typ != ACCESS_TYPE || claims.exp < now - leeway || claims.nbf > now + leeway {
            return Err(invalid());
        }
        Ok(VerifiedAccess {
            user_id: claims.sub.parse().map_err(|_| invalid())?,
            session_id: claims.sid.parse().map_err(|_| invalid())?,
            version: claims.ver,
        })
    }
}
