//! gm's integration tests: one binary (linked once) with one module per area. Tests run the real
//! `gm` binary against real SQLite files on 127.0.0.1, and replay upstream's shared vectors from
//! `tests/vectors/` (a copy of `../shared/vectors/`, refreshed when it changes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod admin_auth;
mod admin_signature;
mod archive_bounds;
mod audit_export;
mod audit_growth;
mod backup_faults;
mod backup_forgery;
mod backup_restore;
mod backup_rotation;
mod cli;
mod clients;
mod config_check;
mod cron;
mod custody;
mod custody_escrow;
mod decisions;
mod default_jobs;
mod drill_scratch;
mod durability;
mod enroll;
mod file_modes;
mod harness;
mod import_loops;
mod incident;
mod keys;
mod offline_signing;
mod operators;
mod outbound_deadlines;
mod packaging;
mod probe;
mod proxies;
mod prune;
mod readiness;
mod readiness_tls;
mod readme;
mod replay;
mod runbooks;
mod s3_backup;
mod s3_restore;
mod s3_server;
mod s3_site;
mod secrets;
mod serve;
mod serve_limits;
mod signer;
mod signer_run;
mod store;
mod tls_client;
mod tls_serve;
mod trust;
mod vectors;
