//! Owners are kept as a username plus a salted Argon2id digest of their password, so
//! neither the log nor an export ever holds a password.
//!
//! Argon2id is slow on purpose (tens of milliseconds). IM checks ownership on every
//! request, so verified pairs are remembered in memory, keyed by a SHA-256 of the
//! pair under a key that lives only in this process: the first request of a user
//! pays for one hash, later ones pay a map lookup.
//!
//! Concurrent first requests of one user share that one hash: each remembered
//! verdict, and the digest minted for a new owner, is a cell that the first caller
//! fills while the others wait for it. Without that, 32 clients creating
//! infrastructures at once as a new user computed 32 Argon2 hashes (and 32 owner
//! records with different salts) in parallel on the blocking pool, and the first
//! second of such a load answered in up to 2 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::ImCredential;

/// The length in bytes of the random salt drawn for each owner record.
pub const SALT_LEN: usize = 16;
/// The length in bytes of an owner's Argon2id digest.
pub const DIGEST_LEN: usize = 32;
/// Past this many remembered verdicts the memo starts afresh: it bounds memory when
/// a client sends many different passwords.
const MEMO_CAPACITY: usize = 65_536;

/// How an owner's password is remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordDigest {
    /// The random salt the digest was computed with.
    pub salt: [u8; SALT_LEN],
    /// The Argon2id hash of the salt and the password (or of "no password").
    pub digest: [u8; DIGEST_LEN],
}

/// A value computed once by whoever asks first; later askers wait for it.
type Shared<T> = Arc<OnceLock<T>>;

/// Keyed by a SHA-256 under the process key; bounded by [`MEMO_CAPACITY`].
type Memo<T> = Mutex<HashMap<[u8; 32], Shared<T>>>;

/// Hashes and verifies owner passwords, remembering verdicts.
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    process_key: [u8; 32],
    memo: Memo<bool>,
    /// The digest this process gives new owner records of a username and password.
    minted: Memo<PasswordDigest>,
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
    /// A hasher with these Argon2 parameters and a fresh random process key (so
    /// remembered verdicts mean nothing to another process).
    pub fn new(argon2: Argon2<'static>) -> Self {
        let mut process_key = [0u8; 32];
        rand::rng().fill_bytes(&mut process_key);
        PasswordHasher {
            argon2,
            process_key,
            memo: Mutex::new(HashMap::new()),
            minted: Mutex::new(HashMap::new()),
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
        let cell = shared(&self.memo, self.memo_key(stored, password));
        *cell.get_or_init(|| {
            let mut digest = [0u8; DIGEST_LEN];
            self.argon2
                .hash_password_into(&password_material(password), &stored.salt, &mut digest)
                .is_ok()
                && constant_time_eq(&digest, &stored.digest)
        })
    }

    /// The digest for a new owner record of `username` with `password`: minted once
    /// per process under a fresh salt, then shared by every later and concurrent
    /// caller, so one user's infrastructures share one salt and one verification.
    pub fn digest_for_new_owner(&self, username: &str, password: Option<&str>) -> PasswordDigest {
        let cell = shared(&self.minted, self.owner_key(username, password));
        *cell.get_or_init(|| self.digest_new(password))
    }

    /// [`Self::digest_for_new_owner`] if it needs no hash now.
    pub fn minted_for_new_owner(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Option<PasswordDigest> {
        let key = self.owner_key(username, password);
        recall(&self.minted, &key)
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

    fn owner_key(&self, username: &str, password: Option<&str>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.process_key);
        hasher.update(b"new owner");
        hasher.update((username.len() as u64).to_le_bytes());
        hasher.update(username.as_bytes());
        hasher.update(password_material(password));
        hasher.finalize().into()
    }

    fn recall(&self, stored: &PasswordDigest, password: Option<&str>) -> Option<bool> {
        recall(&self.memo, &self.memo_key(stored, password))
    }

    fn remember(&self, stored: &PasswordDigest, password: Option<&str>, verdict: bool) {
        // A cell already filled holds the same verdict: the digest decides it.
        let _ = shared(&self.memo, self.memo_key(stored, password)).set(verdict);
    }
}

/// The cell of `key`, made empty if there is none (the memo starts afresh when full).
fn shared<T>(memo: &Memo<T>, key: [u8; 32]) -> Shared<T> {
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= MEMO_CAPACITY && !memo.contains_key(&key) {
        memo.clear();
    }
    Arc::clone(memo.entry(key).or_default())
}

/// The value of `key` if it was computed already.
fn recall<T: Copy>(memo: &Memo<T>, key: &[u8; 32]) -> Option<T> {
    memo.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(key)
        .and_then(|cell| cell.get().copied())
}

/// An owner of an infrastructure as stored: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The IM username the owner authenticates with.
    pub username: String,
    /// The salted digest of the owner's password, or of "no password".
    pub password: PasswordDigest,
    /// Whether a token user created it: only requests carrying a token match it.
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

/// Compares without stopping at the first difference.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
    fn concurrent_first_callers_share_one_minted_digest() {
        let hasher = PasswordHasher::fast_for_tests();
        assert_eq!(hasher.minted_for_new_owner("u", Some("p")), None);
        let digests: Vec<PasswordDigest> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| hasher.digest_for_new_owner("u", Some("p"))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(digests.iter().all(|d| *d == digests[0]), "one salt for all");
        assert_eq!(
            hasher.minted_for_new_owner("u", Some("p")),
            Some(digests[0])
        );
        assert!(hasher.verify(&digests[0], Some("p")));
        // Another user, or another password, or none, gets a digest of its own.
        assert_ne!(hasher.digest_for_new_owner("v", Some("p")), digests[0]);
        assert_ne!(hasher.digest_for_new_owner("u", Some("q")), digests[0]);
        assert_ne!(hasher.digest_for_new_owner("u", None), digests[0]);
        // The username is length-prefixed: "ab"+"c" is not "a"+"bc".
        assert_ne!(
            hasher.owner_key("ab", Some("c")),
            hasher.owner_key("a", Some("bc"))
        );
        // A fresh process mints afresh (the salt is random).
        let other = PasswordHasher::fast_for_tests();
        assert_ne!(other.digest_for_new_owner("u", Some("p")), digests[0]);
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
