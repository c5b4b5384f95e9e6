//! Cryptographic building blocks shared by every signed object: upstream key files, the canonical
//! JSON bytes that get signed (the only path to such bytes), Ed25519 signatures and digests.
//!
//! Spec: `na-wire.md` §2 (keys, signatures, key files) and §3.1 (canonical JSON).

pub mod canonical;
pub mod cert_expiry;
pub(crate) mod cert_facts;
pub mod digest;
pub mod error;
pub mod keys;
pub mod payload;
pub(crate) mod sandbox_tls;
pub mod signature;
pub mod tls_files;

pub use error::CryptoError;
