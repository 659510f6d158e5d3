//! The auth flags shared by the roles.

use std::path::PathBuf;

use jsonwebtoken::Algorithm;

use super::api_keys::ApiKeys;
use super::jwt::{Checks, JwtVerifier};
use super::publisher::PublisherAuth;
use crate::config::{ConfigError, read_file};

/// How JWTs are verified.
#[derive(clap::Args, Debug, Clone)]
pub struct JwtArgs {
    /// Shared secret that signs JWTs (HS256).
    #[arg(long, env = "NOTIF_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File holding the shared secret that signs JWTs (HS256), as a mounted Secret.
    #[arg(long, env = "NOTIF_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM file of the public key that verifies JWTs (instead of a secret).
    #[arg(long, env = "NOTIF_JWT_PUBLIC_KEY_FILE", conflicts_with_all = ["jwt_secret", "jwt_secret_file"])]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Algorithm of the public key: RS256, ES256 or EdDSA.
    #[arg(long, env = "NOTIF_JWT_ALGORITHM", default_value = "RS256", value_parser = parse_algorithm)]
    pub jwt_algorithm: Algorithm,
    /// When set, a token's `aud` must name it (a token minted for another
    /// service with the same key is refused).
    #[arg(long, env = "NOTIF_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// When set, a token's `iss` must be it.
    #[arg(long, env = "NOTIF_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Seconds of clock skew allowed on a token's `exp` and `nbf`.
    #[arg(long, env = "NOTIF_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub jwt_leeway_secs: u64,
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    match s {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!("`{other}` is not one of RS256, ES256, EdDSA")),
    }
}

impl JwtArgs {
    /// The verifier, or none when no key is configured.
    pub fn verifier(&self) -> Result<Option<JwtVerifier>, ConfigError> {
        Ok(self
            .key()?
            .map(|verifier| verifier.checking(&self.checks())))
    }

    /// What tokens' claims must say.
    pub fn checks(&self) -> Checks {
        Checks {
            audience: self.jwt_audience.clone(),
            issuer: self.jwt_issuer.clone(),
            leeway_secs: self.jwt_leeway_secs,
        }
    }

    fn key(&self) -> Result<Option<JwtVerifier>, ConfigError> {
        let secret = match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(secret), _) => Some(("--jwt-secret", secret.as_bytes().to_vec())),
            (None, Some(path)) => Some((
                "--jwt-secret-file",
                trim_end(read_file("--jwt-secret-file", path)?),
            )),
            (None, None) => None,
        };
        if let Some((flag, secret)) = secret {
            return JwtVerifier::with_secret(&secret)
                .map(Some)
                .map_err(|e| ConfigError::new(flag, e.to_string()));
        }
        match &self.jwt_public_key_file {
            Some(path) => {
                let pem = read_file("--jwt-public-key-file", path)?;
                JwtVerifier::with_public_key(&pem, self.jwt_algorithm)
                    .map(Some)
                    .map_err(|e| ConfigError::new("--jwt-public-key-file", e.to_string()))
            }
            None => Ok(None),
        }
    }
}

/// A secret file's trailing newline is not part of the secret.
fn trim_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    bytes
}

/// Who may publish.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PublisherAuthArgs {
    /// File of publisher API key hashes, one `sha256:<hex>` per line (a mounted Secret).
    #[arg(long, env = "NOTIF_API_KEY_HASHES_FILE")]
    pub api_key_hashes_file: Option<PathBuf>,
    /// Publisher API key hashes, comma-separated `sha256:<hex>`.
    #[arg(long, env = "NOTIF_API_KEY_HASHES", hide_env_values = true)]
    pub api_key_hashes: Option<String>,
    /// Let anyone publish without credentials (only on a network you trust).
    #[arg(long, env = "NOTIF_ALLOW_ANONYMOUS_PUBLISH")]
    pub allow_anonymous_publish: bool,
}

impl PublisherAuthArgs {
    pub fn load(&self, jwt: Option<JwtVerifier>) -> Result<PublisherAuth, ConfigError> {
        let mut text = String::new();
        if let Some(path) = &self.api_key_hashes_file {
            let bytes = read_file("--api-key-hashes-file", path)?;
            text = String::from_utf8(bytes).map_err(|_| {
                ConfigError::new("--api-key-hashes-file", "the file is not UTF-8 text")
            })?;
            ApiKeys::parse(&text)
                .map_err(|e| ConfigError::new("--api-key-hashes-file", e.to_string()))?;
        }
        if let Some(list) = &self.api_key_hashes {
            ApiKeys::parse(list)
                .map_err(|e| ConfigError::new("--api-key-hashes", e.to_string()))?;
            text = format!("{text}\n{list}");
        }
        let api_keys = ApiKeys::parse(&text)
            .map_err(|e| ConfigError::new("--api-key-hashes", e.to_string()))?;
        if api_keys.is_empty() && jwt.is_none() && !self.allow_anonymous_publish {
            return Err(ConfigError::new(
                "--api-key-hashes-file",
                "no publisher could authenticate: give API key hashes (--api-key-hashes-file or \
                 --api-key-hashes), a JWT key (--jwt-secret, --jwt-secret-file or \
                 --jwt-public-key-file), or --allow-anonymous-publish",
            ));
        }
        Ok(PublisherAuth {
            api_keys,
            jwt,
            open: self.allow_anonymous_publish,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        jwt: JwtArgs,
    }

    fn verifier(flags: &[&str]) -> JwtVerifier {
        let args = ["notifd", "--jwt-secret", "s3cret"].iter().chain(flags);
        Flags::try_parse_from(args)
            .expect("the flags parse")
            .jwt
            .verifier()
            .expect("a key")
            .expect("a verifier")
    }

    /// A token for `u` with `claims` beside its `sub`.
    fn token(claims: serde_json::Value) -> String {
        let mut all = json!({"sub": "u"});
        all.as_object_mut()
            .expect("an object")
            .extend(claims.as_object().expect("an object").clone());
        jsonwebtoken::encode(
            &Header::default(),
            &all,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .expect("signed")
    }

    #[test]
    fn the_leeway_audience_and_issuer_flags_reach_the_verifier() {
        let now = crate::notification::now_ms() / 1000;
        let lately_expired = token(json!({"exp": now - 10}));
        assert!(verifier(&[]).verify(&lately_expired).is_ok(), "30 s leeway");
        assert!(
            verifier(&["--jwt-leeway-secs", "0"])
                .verify(&lately_expired)
                .is_err(),
            "no leeway"
        );

        let checked = verifier(&["--jwt-audience", "notif", "--jwt-issuer", "idp"]);
        let exp = now + 600;
        for (claims, accepted) in [
            (json!({"exp": exp, "aud": "notif", "iss": "idp"}), true),
            (
                json!({"exp": exp, "aud": ["other", "notif"], "iss": "idp"}),
                true,
            ),
            (json!({"exp": exp, "iss": "idp"}), false),
            (json!({"exp": exp, "aud": "other", "iss": "idp"}), false),
            (json!({"exp": exp, "aud": "notif"}), false),
            (json!({"exp": exp, "aud": "notif", "iss": "another"}), false),
        ] {
            let verified = checked.verify(&token(claims.clone()));
            assert_eq!(verified.is_ok(), accepted, "{claims}");
        }
    }
}
