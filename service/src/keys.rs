//! API keys: how they are made, stored and checked.
//!
//! A key reads `cairn_<id>_<secret>`: `id` is 16 hex digits (64 random bits), public, the
//! key's name in lists and in the audit log; `secret` is 64 hex digits (256 random bits
//! from the operating system). The secret is shown once, when the key is made; the catalog
//! keeps only HMAC-SHA256 of it under the server's key-hashing secret (a file of 32 random
//! bytes beside the catalog, mode 0600), so a copy of the catalog alone is not enough to
//! test guesses against. Checking a key looks it up by id and compares the hash in
//! constant time.

use cairn_core::{ApiKey, Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// What every key starts with.
pub const KEY_PREFIX: &str = "cairn_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// The server's key-hashing secret.
#[derive(Clone)]
pub struct KeyHasher {
    secret: [u8; 32],
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

/// A key as its holder sees it, split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| Error::internal(format!("cannot read random bytes: {e}")))?;
    Ok(b)
}

impl KeyHasher {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        KeyHasher { secret }
    }

    /// Reads the secret at `path`, or makes one there (mode 0600) when there is none.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    Error::internal(format!(
                        "{}: the key-hashing secret must be 32 bytes, found {}",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(KeyHasher { secret })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = random_bytes::<32>()?;
                write_private(path, &secret)?;
                Ok(KeyHasher { secret })
            }
            Err(e) => Err(Error::internal(format!(
                "cannot read the key-hashing secret {}: {e}",
                path.display()
            ))),
        }
    }

    /// Hex HMAC-SHA256 of a key's secret.
    pub fn hash(&self, secret: &str) -> String {
        hex::encode(self.mac(secret).finalize().into_bytes())
    }

    fn mac(&self, secret: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(secret.as_bytes());
        mac
    }

    /// Whether `secret` is the one whose hash is `stored_hex`, in constant time.
    pub fn verify(&self, secret: &str, stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else {
            return false;
        };
        self.mac(secret).verify_slice(&stored).is_ok()
    }

    /// Makes a new key's id and secret: the full key to show once, and the id and hash
    /// to store.
    pub fn mint(&self) -> Result<(String, String, String)> {
        let id = hex::encode(random_bytes::<ID_BYTES>()?);
        let secret = hex::encode(random_bytes::<SECRET_BYTES>()?);
        let full = format!("{KEY_PREFIX}{id}_{secret}");
        let hash = self.hash(&secret);
        Ok((full, id, hash))
    }

    /// Checks a presented key against its stored record.
    pub fn matches(&self, presented: &PresentedKey<'_>, stored: &ApiKey) -> bool {
        presented.id == stored.id && self.verify(presented.secret, &stored.secret_hash)
    }
}

/// Splits `cairn_<id>_<secret>`; `None` when it does not have that shape.
pub fn parse(key: &str) -> Option<PresentedKey<'_>> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, n: usize| s.len() == n * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, ID_BYTES) && hex_of(secret, SECRET_BYTES)).then_some(PresentedKey { id, secret })
}

/// Writes a file only its owner may read, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| {
        Error::internal(format!(
            "cannot write the key-hashing secret {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    // A second server that raced us keeps the first secret.
    std::fs::hard_link(&tmp, path)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(io)?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_verify_and_nothing_else_does() {
        let h = KeyHasher::from_secret([7; 32]);
        let (full, id, hash) = h.mint().unwrap();
        assert!(full.starts_with("cairn_"));
        assert_eq!(full.len(), 6 + 16 + 1 + 64);
        let p = parse(&full).unwrap();
        assert_eq!(p.id, id);
        assert!(
            !hash.contains(p.secret),
            "the stored hash is not the secret"
        );
        let stored = ApiKey {
            id: id.clone(),
            name: "n".into(),
            tenant: "t".into(),
            groups: vec![],
            role: cairn_core::Role::Reader,
            created_at: 0,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            secret_hash: hash.clone(),
        };
        assert!(h.matches(&p, &stored));
        // One changed digit of the secret, another server's hashing secret, or another id.
        let mut flipped = full.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!h.matches(&parse(&flipped).unwrap(), &stored));
        assert!(!KeyHasher::from_secret([8; 32]).matches(&p, &stored));
        let other = ApiKey {
            id: "0000000000000000".into(),
            ..stored.clone()
        };
        assert!(!h.matches(&p, &other));
        // The same secret under the same hashing secret gives the same hash.
        assert_eq!(h.hash(p.secret), hash);
        let (again, _, _) = h.mint().unwrap();
        assert_ne!(again, full);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let good = format!("cairn_{}_{}", "a".repeat(16), "b".repeat(64));
        assert!(parse(&good).is_some());
        for bad in [
            "",
            "cairn_",
            "Bearer x",
            &good[..good.len() - 1],
            &format!("{good}0"),
            &good.replace("cairn_", "cairm_"),
            &format!("cairn_{}_{}", "g".repeat(16), "b".repeat(64)),
            &format!("cairn_{}{}", "a".repeat(16), "b".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_hashing_secret_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.secret");
        let a = KeyHasher::load_or_create(&path).unwrap();
        let b = KeyHasher::load_or_create(&path).unwrap();
        assert_eq!(a.hash("x"), b.hash("x"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        let e = KeyHasher::load_or_create(&path).unwrap_err();
        assert!(e.message.contains("32 bytes"), "{}", e.message);
    }
}
