//! JSON Web Tokens: clients prove who they are (`sub` is the recipient), and
//! publishers may prove they may publish (`scope` has `publish`).
//!
//! Tokens are verified with a shared secret (HS256) or a public key (RS256,
//! ES256 or EdDSA, from PEM); `exp` is required, `nbf` checked when present,
//! and `aud` and `iss` when the service is configured with them.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims the service reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The recipient a client token speaks for.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Space-separated scopes, OAuth style.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

impl Claims {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// What a token's claims must say besides its signature.
#[derive(Debug, Clone)]
pub struct Checks {
    /// `aud` must name it.
    pub audience: Option<String>,
    /// `iss` must be it.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            audience: None,
            issuer: None,
            leeway_secs: 30,
        }
    }
}

/// Checks tokens' signatures and expiry.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the JWT public key is not a PEM {algorithm:?} public key: {source}")]
    PublicKey {
        algorithm: Algorithm,
        source: jsonwebtoken::errors::Error,
    },
    #[error("the JWT algorithm {0:?} is not one of RS256, ES256 or EdDSA")]
    Algorithm(Algorithm),
    #[error("the JWT secret is empty")]
    EmptySecret,
}

impl JwtVerifier {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn with_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// Verifies tokens signed with the private half of `pem`.
    pub fn with_public_key(pem: &[u8], algorithm: Algorithm) -> Result<Self, KeyError> {
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            other => return Err(KeyError::Algorithm(other)),
        }
        .map_err(|source| KeyError::PublicKey { algorithm, source })?;
        Ok(Self::new(key, algorithm))
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = Checks::default().leeway_secs;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        JwtVerifier { key, validation }
    }

    /// Also requires what `checks` say of the claims.
    pub fn checking(mut self, checks: &Checks) -> Self {
        self.validation.leeway = checks.leeway_secs;
        // Required, not only checked when present.
        if let Some(audience) = &checks.audience {
            self.validation.set_audience(&[audience]);
            self.validation.validate_aud = true;
            self.validation.required_spec_claims.insert("aud".into());
        }
        if let Some(issuer) = &checks.issuer {
            self.validation.set_issuer(&[issuer]);
            self.validation.required_spec_claims.insert("iss".into());
        }
        self
    }

    /// The token's claims, if its signature and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map(|data| data.claims)
    }
}

/// A client's claims with the audience and issuer that a service may
/// require ([`Checks`]), as `notifd token` writes them.
#[derive(Debug, Serialize)]
pub struct IssuedClaims<'a> {
    #[serde(flatten)]
    pub claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
}

/// Signs `claims` with an HS256 `secret` (for `notifd token` and tests).
pub fn sign_with_secret(
    claims: &impl Serialize,
    secret: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

/// Whether `token` has the shape of a JWT (three base64url parts), so that
/// the receiver knows to verify it as one rather than look it up as an API key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "user-1".into(),
            exp,
            scope: "publish read".into(),
        }
    }

    fn in_an_hour() -> u64 {
        crate::notification::now_ms() / 1000 + 3600
    }

    #[test]
    fn a_signed_token_verifies_and_keeps_its_claims() {
        let exp = in_an_hour();
        let token = sign_with_secret(&claims(exp), b"s3cret").unwrap();
        assert!(looks_like_jwt(&token));
        let verified = JwtVerifier::with_secret(b"s3cret")
            .unwrap()
            .verify(&token)
            .unwrap();
        assert_eq!(verified, claims(exp));
        assert!(verified.has_scope("publish") && !verified.has_scope("pub"));
    }

    /// A token with `extra` claims beside `claims(in_an_hour())`.
    fn token_with(extra: serde_json::Value) -> String {
        let mut all = serde_json::to_value(claims(in_an_hour())).unwrap();
        all.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &all,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let verifier = JwtVerifier::with_secret(b"s3cret").unwrap();
        let now = crate::notification::now_ms() / 1000;
        assert!(
            verifier
                .verify(&token_with(serde_json::json!({"nbf": now + 600})))
                .is_err()
        );
        assert!(
            verifier
                .verify(&token_with(serde_json::json!({"nbf": now})))
                .is_ok()
        );
    }

    #[test]
    fn audience_and_issuer_are_required_when_configured() {
        let plain = JwtVerifier::with_secret(b"s3cret").unwrap();
        let checking = plain.clone().checking(&Checks {
            audience: Some("notifications".into()),
            issuer: Some("https://auth.example".into()),
            ..Checks::default()
        });
        let ours =
            token_with(serde_json::json!({"aud": "notifications", "iss": "https://auth.example"}));
        let theirs =
            token_with(serde_json::json!({"aud": "billing", "iss": "https://auth.example"}));
        let elsewhere =
            token_with(serde_json::json!({"aud": "notifications", "iss": "https://other.example"}));
        let bare = token_with(serde_json::json!({}));
        assert!(checking.verify(&ours).is_ok());
        for (token, which) in [
            (&theirs, "another audience"),
            (&elsewhere, "another issuer"),
            (&bare, "neither"),
        ] {
            assert!(checking.verify(token).is_err(), "{which}");
        }
        assert!(
            plain.verify(&bare).is_ok(),
            "unconfigured, they are not required"
        );
    }

    #[test]
    fn a_wrong_secret_or_an_expired_token_is_refused() {
        let token = sign_with_secret(&claims(in_an_hour()), b"s3cret").unwrap();
        assert!(
            JwtVerifier::with_secret(b"other")
                .unwrap()
                .verify(&token)
                .is_err()
        );
        let expired = sign_with_secret(&claims(1_000_000), b"s3cret").unwrap();
        assert!(
            JwtVerifier::with_secret(b"s3cret")
                .unwrap()
                .verify(&expired)
                .is_err()
        );
    }
}
