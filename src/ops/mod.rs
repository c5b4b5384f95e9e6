//! Managed operations (`operations.md` §2): encrypted backups with a manifest, verification,
//! safe restore, and the ops ledger that records them. Everything works on real files: SQLite's
//! online backup API for snapshots, age for encryption, tar + gzip for the archive, and atomic
//! renames so no file ever carries a final name unless it is complete.

pub mod archive;
pub mod audit_export;
pub mod audit_prune;
pub mod backup;
pub mod backup_name;
pub(crate) mod backup_remote;
pub mod backup_signature;
pub mod catalog;
pub(crate) mod destination;
pub mod drill;
pub(crate) mod drill_scratch;
pub mod error;
pub(crate) mod escrow;
pub mod gzip_members;
pub mod incident;
pub mod ledger;
pub mod leftovers;
pub mod manifest;
pub mod progress;
pub mod prune;
pub mod restore;
pub(crate) mod runtime;
pub mod s3;
pub(crate) mod snapshot_stream;
pub mod verify;

pub use error::OpsError;
