//! gm: a Genesis Mesh managed sovereign in one binary.
//!
//! The library does everything; `src/main.rs` only parses arguments and dispatches to [`cli::run`].
//! Module map and dependency direction: `ARCHITECTURE.md`, enforced by `scripts/check-layers.sh`.
//! `cli` at the top, `na` (the Network Authority server) over `http`, `store`, `model` and `crypto`,
//! with `clock`, `files`, `json`, `logging` and `percent` as leaves.

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod clock;
// Public only for the fuzz targets in `fuzz/` (`ConfigFile::parse`, `cron_settings`); not an API.
#[doc(hidden)]
pub mod config;
pub mod crypto;
pub mod files;
pub mod http;
pub mod json;
pub mod logging;
pub mod model;
pub mod na;
pub mod ops;
pub(crate) mod percent;
pub mod probe;
pub mod readiness;
pub mod sched;
pub mod signer;
pub mod store;
