//! Owners are kept as a username plus a salted Argon2id digest of their password, so
//! neither the log nor an export ever holds a password.
//!
//! Argon2id is slow on purpose (tens of milliseconds). IM checks ownership on every
//! request, so verified pairs are remembered in memory, keyed by a SHA-256 of the
//! pair under a key that lives only in this process: the first request of a user
//! pays for one hash, later ones pay a map lookup.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::ImCredential;

pub const SALT_LEN: usize = 16;
pub const DIGEST_LEN: usize = 32;
/// Past this many remembered verdicts the memo starts afresh: it bounds memory when
/// a client sends many different passwords.
const MEMO_CAPACITY: usize = 65_536;

/// How an owner's password is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordDigest {
    pub salt: [u8; SALT_LEN],
    pub digest: [u8; DIGEST_LEN],
}

/// Hashes and verifies owner passwords, remembering verdicts.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    process_key: [u8; 32],
    memo: Mutex<HashMap<[u8; 32], bool>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(Argon2::default())
    }
}

impl PasswordHasher {
    pub fn new(argon2: Argon2<'static>) -> Self {
        let mut process_key = [0u8; 32];
        rand::rng().fill_bytes(&mut process_key);
        PasswordHasher {
            argon2,
            process_key,
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// Cheap parameters for tests, where thousands of owners are hashed.
    pub fn fast_for_tests() -> Self {
        let params = argon2::Params::new(8, 1, 1, Some(DIGEST_LEN)).expect("valid argon2 params");
        Self::new(Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// A digest of `password` under a fresh random salt.
    pub fn digest_new(&self, password: Option<&str>) -> PasswordDigest {
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        self.digest_with_salt(password, salt)
    }

    /// A digest of `password` under a given salt (to reuse a user's existing salt).
    pub fn digest_with_salt(&self, password: Option<&str>, salt: [u8; SALT_LEN]) -> PasswordDigest {
        let mut digest = [0u8; DIGEST_LEN];
        // Output length and salt length are fixed and valid, so hashing cannot fail.
        if self
            .argon2
            .hash_password_into(&password_material(password), &salt, &mut digest)
            .is_err()
        {
            digest = [0u8; DIGEST_LEN];
        }
        let remembered = PasswordDigest { salt, digest };
        self.remember(&remembered, password, true);
        remembered
    }

    /// Whether `password` is the one behind `stored`.
    pub fn verify(&self, stored: &PasswordDigest, password: Option<&str>) -> bool {
        if let Some(verdict) = self.recall(stored, password) {
            return verdict;
        }
        let mut digest = [0u8; DIGEST_LEN];
        let ok = self
            .argon2
            .hash_password_into(&password_material(password), &stored.salt, &mut digest)
            .is_ok()
            && constant_time_eq(&digest, &stored.digest);
        self.remember(stored, password, ok);
        ok
    }

    /// Whether verifying would need a slow hash (callers move that off async threads).
    pub fn is_remembered(&self, stored: &PasswordDigest, password: Option<&str>) -> bool {
        self.recall(stored, password).is_some()
    }

    /// IM's rule: an owner matches a request line with the same username and
    /// password, and an owner created with a token only matches lines with a token.
    pub fn owner_matches(&self, owner: &Owner, credential: &ImCredential) -> bool {
        owner.username == credential.username
            && (!owner.via_token || credential.has_token)
            && self.verify(
                &owner.password,
                credential.password.as_ref().map(|p| p.expose()),
            )
    }

    fn memo_key(&self, stored: &PasswordDigest, password: Option<&str>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.process_key);
        hasher.update(stored.salt);
        hasher.update(stored.digest);
        hasher.update(password_material(password));
        hasher.finalize().into()
    }

    fn recall(&self, stored: &PasswordDigest, password: Option<&str>) -> Option<bool> {
        let key = self.memo_key(stored, password);
        self.memo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            .copied()
    }

    fn remember(&self, stored: &PasswordDigest, password: Option<&str>, verdict: bool) {
        let key = self.memo_key(stored, password);
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(key, verdict);
    }
}

/// An owner of an infrastructure as stored: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub username: String,
    pub password: PasswordDigest,
    pub via_token: bool,
}

/// "No password" and "empty password" are different identities in IM (`None` is not
/// `""`), so the material is tagged.
fn password_material(password: Option<&str>) -> Vec<u8> {
    match password {
        None => vec![0],
        Some(p) => {
            let mut material = Vec::with_capacity(p.len() + 1);
            material.push(1);
            material.extend_from_slice(p.as_bytes());
            material
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn credential(username: &str, password: Option<&str>) -> ImCredential {
        ImCredential {
            username: username.into(),
            password: password.map(Secret::new),
            has_token: false,
        }
    }

    #[test]
    fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let hasher = PasswordHasher::fast_for_tests();
        let stored = hasher.digest_new(Some("pass1"));
        assert!(hasher.verify(&stored, Some("pass1")));
        assert!(!hasher.verify(&stored, Some("pass2")));
        assert!(!hasher.verify(&stored, None));
        // A fresh hasher has no memo: the digest itself must verify.
        let other = PasswordHasher::fast_for_tests();
        assert!(other.verify(&stored, Some("pass1")));
        assert!(!other.verify(&stored, Some("pass1 ")));
    }

    #[test]
    fn no_password_and_an_empty_password_are_different() {
        let hasher = PasswordHasher::fast_for_tests();
        let none = hasher.digest_new(None);
        assert!(hasher.verify(&none, None));
        assert!(!hasher.verify(&none, Some("")));
    }

    #[test]
    fn the_same_password_under_two_salts_gives_two_digests() {
        let hasher = PasswordHasher::fast_for_tests();
        let a = hasher.digest_new(Some("p"));
        let b = hasher.digest_new(Some("p"));
        assert_ne!(a.digest, b.digest);
        assert_eq!(hasher.digest_with_salt(Some("p"), a.salt), a);
    }

    #[test]
    fn owners_match_on_username_password_and_token_rule() {
        let hasher = PasswordHasher::fast_for_tests();
        let owner = Owner {
            username: "u".into(),
            password: hasher.digest_new(Some("p")),
            via_token: false,
        };
        assert!(hasher.owner_matches(&owner, &credential("u", Some("p"))));
        assert!(!hasher.owner_matches(&owner, &credential("v", Some("p"))));
        assert!(!hasher.owner_matches(&owner, &credential("u", Some("q"))));
        let token_owner = Owner {
            via_token: true,
            ..owner
        };
        assert!(!hasher.owner_matches(&token_owner, &credential("u", Some("p"))));
    }

    #[test]
    fn verdicts_are_remembered() {
        let hasher = PasswordHasher::fast_for_tests();
        let stored = hasher.digest_new(Some("p"));
        assert!(hasher.is_remembered(&stored, Some("p")));
        assert!(!hasher.is_remembered(&stored, Some("q")));
        hasher.verify(&stored, Some("q"));
        assert!(hasher.is_remembered(&stored, Some("q")));
    }
}
