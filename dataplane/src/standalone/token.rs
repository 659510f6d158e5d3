//! `notifd token`: a client JWT for a recipient, for scripts and for trying
//! the service out.

use std::path::PathBuf;

use crate::auth::jwt::{Claims, IssuedClaims, sign_with_secret};
use crate::config::{ConfigError, read_file};
use crate::notification::{is_valid_recipient, now_ms};

#[derive(clap::Args, Debug, Clone)]
pub struct TokenArgs {
    /// The recipient the token speaks for (its `sub`).
    #[arg(long)]
    pub recipient: String,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 24 * 3600)]
    pub ttl_secs: u64,
    /// Space-separated scopes to put in the token (`publish` lets it publish).
    #[arg(long, default_value = "")]
    pub scope: String,
    /// The token's `aud`: the audience the service requires (--jwt-audience).
    #[arg(long, env = "NOTIF_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// The token's `iss`: the issuer the service requires (--jwt-issuer).
    #[arg(long, env = "NOTIF_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// Shared secret to sign with (HS256); by default, the data directory's generated one.
    #[arg(long, env = "NOTIF_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// File holding the shared secret to sign with.
    #[arg(long, env = "NOTIF_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    pub jwt_secret_file: Option<PathBuf>,
    /// The data directory whose generated secret signs, when no secret is given.
    #[arg(long, env = "NOTIF_DATA_DIR", default_value_os_t = super::data_dir::default_path())]
    pub data_dir: PathBuf,
}

impl TokenArgs {
    /// The signed token.
    pub fn token(&self) -> Result<String, ConfigError> {
        if !is_valid_recipient(&self.recipient) {
            return Err(ConfigError::new(
                "--recipient",
                "a recipient is 1 to 256 characters of A-Z, a-z, 0-9 and . _ : @ -",
            ));
        }
        let secret = match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(secret), _) => secret.clone(),
            (None, Some(path)) => String::from_utf8(read_file("--jwt-secret-file", path)?)
                .map_err(|_| ConfigError::new("--jwt-secret-file", "the file is not UTF-8 text"))?
                .trim_end()
                .to_string(),
            (None, None) => super::credentials::generated_jwt_secret(&self.data_dir)?,
        };
        let claims = Claims {
            sub: self.recipient.clone(),
            exp: now_ms() / 1000 + self.ttl_secs,
            scope: self.scope.clone(),
        };
        let issued = IssuedClaims {
            claims: &claims,
            aud: self.audience.as_deref(),
            iss: self.issuer.as_deref(),
        };
        sign_with_secret(&issued, secret.as_bytes())
            .map_err(|e| ConfigError::new("--jwt-secret", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::auth::jwt::{Checks, JwtVerifier};

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        token: TokenArgs,
    }

    fn token(flags: &[&str]) -> String {
        let args = ["notifd", "--recipient", "u", "--jwt-secret", "s3cret"];
        Flags::try_parse_from(args.iter().chain(flags))
            .expect("the flags parse")
            .token
            .token()
            .expect("a token")
    }

    #[test]
    fn a_token_names_the_audience_and_issuer_a_service_requires() {
        let checked = JwtVerifier::with_secret(b"s3cret")
            .expect("a verifier")
            .checking(&Checks {
                audience: Some("notif".into()),
                issuer: Some("idp".into()),
                ..Checks::default()
            });
        let named = token(&["--audience", "notif", "--issuer", "idp"]);
        assert_eq!(checked.verify(&named).expect("accepted").sub, "u");
        assert!(checked.verify(&token(&[])).is_err(), "no aud, no iss");
    }
}
