//! Password hashing with Argon2id.
//!
//! Hashing is deliberately slow, so it runs on Tokio's blocking pool, never on the async
//! workers, and never on the token-login path.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::CoreError;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
}

impl HashCost {
    /// OWASP's recommended minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const DEFAULT: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
    };
    /// A cheap setting for test suites only (still Argon2id, still salted).
    pub const TEST: Self = Self {
        memory_kib: 64,
        iterations: 1,
    };

    /// Parses `default`, `test`, or `MEMORY_KIB:ITERATIONS`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "default" => Some(Self::DEFAULT),
            "test" => Some(Self::TEST),
            other => {
                let (m, t) = other.split_once(':')?;
                let cost = Self {
                    memory_kib: m.trim().parse().ok()?,
                    iterations: t.trim().parse().ok()?,
                };
                Params::new(cost.memory_kib, cost.iterations, 1, None).ok()?;
                Some(cost)
            }
        }
    }
}

/// Hashes and verifies passwords.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    cost: HashCost,
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Self {
        Self { cost }
    }

    pub fn cost(&self) -> HashCost {
        self.cost
    }

    fn argon2(&self) -> Argon2<'static> {
        let params = Params::new(self.cost.memory_kib, self.cost.iterations, 1, None)
            .expect("cost validated at construction");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// Hashes on the calling thread (use [`Self::hash`] from async code).
    pub fn hash_blocking(&self, password: &str) -> Result<String, CoreError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
    }

    /// Verifies on the calling thread. A malformed stored hash never matches.
    pub fn verify_blocking(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            // The parameters come from the stored hash, so old hashes keep verifying after
            // the configured cost changes.
            Ok(hash) => Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Hashes on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, CoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash_blocking(&password))
            .await
            .map_err(|e| CoreError::Internal(format!("hashing task failed: {e}")))?
    }

    /// Hashes many passwords on the blocking pool, spread over the available cores.
    pub async fn hash_many(&self, passwords: Vec<String>) -> Result<Vec<String>, CoreError> {
        let tasks: Vec<_> = passwords
            .into_iter()
            .map(|p| {
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.hash_blocking(&p))
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(
                task.await
                    .map_err(|e| CoreError::Internal(format!("hashing task failed: {e}")))??,
            );
        }
        Ok(out)
    }

    /// Verifies on the blocking pool.
    pub async fn verify(&self, password: String, phc: String) -> bool {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.verify_blocking(&password, &phc))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let hasher = PasswordHasher::new(HashCost::TEST);
        let a = hasher.hash_blocking("secret").unwrap();
        let b = hasher.hash_blocking("secret").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(hasher.verify_blocking("secret", &a));
        assert!(!hasher.verify_blocking("Secret", &a));
        assert!(!hasher.verify_blocking("secret", "not a hash"));
    }

    #[test]
    fn cost_parses() {
        assert_eq!(HashCost::parse("test"), Some(HashCost::TEST));
        assert_eq!(
            HashCost::parse("4096:3"),
            Some(HashCost {
                memory_kib: 4096,
                iterations: 3
            })
        );
        assert_eq!(HashCost::parse("0:0"), None);
        assert_eq!(HashCost::parse("x"), None);
    }
}
