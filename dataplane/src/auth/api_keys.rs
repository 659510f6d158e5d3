//! Publisher API keys, kept only as SHA-256 hashes.
//!
//! An API key is a long random secret, so a fast hash is enough: there is no
//! password to guess. The hashes come from a file (a mounted Kubernetes
//! Secret) or an environment variable: one `sha256:<64 hex digits>` per line
//! or comma-separated item; blank lines and `#` comments are ignored.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    hashes: Vec<[u8; 32]>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("item {item} is not `sha256:` and 64 hex digits: {reason}")]
pub struct ParseError {
    /// 1-based position of the bad item.
    pub item: usize,
    pub reason: &'static str,
}

impl ApiKeys {
    /// Parses hashes from a file's text or a comma-separated list.
    pub fn parse(text: &str) -> Result<ApiKeys, ParseError> {
        let items = text
            .split(['\n', ','])
            .map(|item| item.split('#').next().unwrap_or("").trim())
            .filter(|item| !item.is_empty());
        let mut hashes = Vec::new();
        for (index, item) in items.enumerate() {
            let error = |reason| ParseError {
                item: index + 1,
                reason,
            };
            let hex = item
                .strip_prefix("sha256:")
                .ok_or(error("no `sha256:` prefix"))?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex, &mut hash).map_err(|_| error("not 64 hex digits"))?;
            hashes.push(hash);
        }
        Ok(ApiKeys { hashes })
    }

    /// The stored form of `key`: what goes into the Secret.
    pub fn hash(key: &str) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `key` is one of the keys, compared in constant time.
    pub fn contains(&self, key: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.hashes
            .iter()
            .fold(false, |found, hash| found | bool::from(hash.ct_eq(&digest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_matches_its_hash_and_nothing_else() {
        let keys = ApiKeys::parse(&format!("# publishers\n{}\n\n", ApiKeys::hash("k1"))).unwrap();
        assert!(keys.contains("k1"));
        assert!(!keys.contains("k2"));
        assert!(!keys.contains(""));
    }

    #[test]
    fn hashes_come_from_lines_or_a_comma_separated_list() {
        let list = format!("{}, {}", ApiKeys::hash("a"), ApiKeys::hash("b"));
        let keys = ApiKeys::parse(&list).unwrap();
        assert!(keys.contains("a") && keys.contains("b"));
    }

    #[test]
    fn a_bad_item_is_named() {
        let text = format!("{}\nsha256:xyz", ApiKeys::hash("a"));
        assert_eq!(
            ApiKeys::parse(&text).unwrap_err(),
            ParseError {
                item: 2,
                reason: "not 64 hex digits"
            }
        );
        assert_eq!(
            ApiKeys::parse("plain-key").unwrap_err().reason,
            "no `sha256:` prefix"
        );
    }
}
