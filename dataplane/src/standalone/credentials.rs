//! Credentials: the ones configured by flags, or development ones made on
//! first start and kept in the data directory, so that a newcomer can
//! publish and connect at once.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::auth::api_keys::ApiKeys;
use crate::auth::config::{JwtArgs, PublisherAuthArgs};
use crate::auth::jwt::JwtVerifier;
use crate::auth::publisher::PublisherAuth;
use crate::config::ConfigError;

/// Who may publish and connect.
pub struct Credentials {
    pub publisher: PublisherAuth,
    pub jwt: JwtVerifier,
    /// The generated secret that signs client tokens, when no JWT key is configured.
    pub jwt_secret: Option<String>,
    /// The generated publisher API key, when no publisher auth is configured.
    pub api_key: Option<String>,
}

impl Credentials {
    /// The configured credentials, with the data directory's generated ones
    /// for whatever is not configured.
    pub fn resolve(
        data_dir: &Path,
        jwt: &JwtArgs,
        publisher: &PublisherAuthArgs,
    ) -> Result<Credentials, ConfigError> {
        let (verifier, jwt_secret) = match jwt.verifier()? {
            Some(verifier) => (verifier, None),
            None => {
                let secret = generated_jwt_secret(data_dir)?;
                let verifier = JwtVerifier::with_secret(secret.as_bytes())
                    .map_err(|e| ConfigError::new("--data-dir", e.to_string()))?
                    .checking(&jwt.checks());
                (verifier, Some(secret))
            }
        };
        let configured = publisher.api_key_hashes_file.is_some()
            || publisher.api_key_hashes.is_some()
            || publisher.allow_anonymous_publish;
        let (publisher, api_key) = match configured {
            true => (publisher.load(Some(verifier.clone()))?, None),
            false => {
                let key = generated(data_dir, API_KEY_FILE, || {
                    format!("sk_dev_{}", random_hex())
                })?;
                let api_keys = ApiKeys::parse(&ApiKeys::hash(&key))
                    .map_err(|e| ConfigError::new("--data-dir", e.to_string()))?;
                let auth = PublisherAuth {
                    api_keys,
                    jwt: Some(verifier.clone()),
                    open: false,
                };
                (auth, Some(key))
            }
        };
        Ok(Credentials {
            publisher,
            jwt: verifier,
            jwt_secret,
            api_key,
        })
    }

    /// Whether everything is the generated development credentials: then the
    /// demo page may hand out tokens.
    pub fn is_development(&self) -> bool {
        self.jwt_secret.is_some() && self.api_key.is_some()
    }
}

const API_KEY_FILE: &str = "api-key";
const JWT_SECRET_FILE: &str = "jwt-secret";

/// Where the generated publisher API key is kept.
pub fn api_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(API_KEY_FILE)
}

/// The data directory's secret for client tokens, made if missing.
pub fn generated_jwt_secret(data_dir: &Path) -> Result<String, ConfigError> {
    generated(data_dir, JWT_SECRET_FILE, random_hex)
}

/// The value in `data_dir/name`; made by `make` and kept (readable by this
/// user only) when there is none. Two processes making it at once agree on
/// one: the file appears whole, by a link that fails if it exists.
fn generated(
    data_dir: &Path,
    name: &str,
    make: impl Fn() -> String,
) -> Result<String, ConfigError> {
    let path = data_dir.join(name);
    let error = |e: std::io::Error| {
        ConfigError::new("--data-dir", format!("cannot keep {}: {e}", path.display()))
    };
    match fs::read_to_string(&path) {
        Ok(value) => return Ok(value.trim().to_string()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    fs::create_dir_all(data_dir).map_err(error)?;
    let value = make();
    let temporary = data_dir.join(format!(".{name}.{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(error)?;
    file.write_all(format!("{value}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(error)?;
    let linked = fs::hard_link(&temporary, &path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(value),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => fs::read_to_string(&path)
            .map(|v| v.trim().to_string())
            .map_err(error),
        Err(e) => Err(error(e)),
    }
}

/// 32 random bytes, as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator does not fail on a supported system.
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    hex::encode(bytes)
}
