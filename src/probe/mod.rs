//! `gm probe`: the external uptime probe of a Network Authority (`operations.md` §4.2, §4.4). It
//! checks, from outside the NA host, what a client sees: `/healthz` and `/readyz` status and body,
//! `/metrics` as Prometheus text with upstream's five gauges, `/connectome.json` shape, the genesis
//! root signature against a pinned root key, the CRL signature (NA key from the served genesis) and
//! freshness, latency per check, and for `https` targets the days until the server certificate
//! expires.
//!
//! [`checks`] runs each check in its own thread under one deadline and returns raw outcomes;
//! [`nagios`] turns them into Nagios statuses, applying upstream's alert thresholds with a small
//! state file of consecutive failures; [`report`] renders the table, the JSON and the
//! node_exporter textfile; [`deadman`] pings a dead-man switch only when every check passed.
//!
//! This module reads no flags or environment (`cli/probe.rs` builds [`ProbeOptions`]) and prints
//! nothing; it writes only the state file and the textfile it is given, atomically.

pub mod cert_expiry;
pub mod checks;
pub mod deadman;
pub mod error;
mod finding;
pub mod nagios;
pub mod report;
pub mod tls;
pub mod trust;

use std::time::Duration;

use crate::crypto::keys::PublicKey;

pub use checks::{CheckName, CheckResult, Outcome};
pub use error::ProbeError;
pub use nagios::Status;

/// What one probe run checks, built once from the command line.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The NA base URL (`https://na.example.org`), without a trailing `/`.
    pub target: String,
    /// The checks to run, in display order, without duplicates.
    pub checks: Vec<CheckName>,
    /// The pinned root public key the genesis must be signed by; `None` reports the genesis check
    /// as WARNING (not pinned).
    pub root_public_key: Option<PublicKey>,
    /// Deadline of each check (all checks run in parallel, so also of the whole run). Defaults to
    /// 10 s.
    pub timeout: Duration,
    /// TLS certificate expiry thresholds.
    pub tls: TlsThresholds,
}

/// Days before the server certificate expires at which the TLS check turns WARNING or CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TlsThresholds {
    /// WARNING below this many days. Defaults to 14.
    pub warn_days: u32,
    /// CRITICAL below this many days. Defaults to 7.
    pub critical_days: u32,
}

impl Default for TlsThresholds {
    fn default() -> TlsThresholds {
        TlsThresholds { warn_days: 14, critical_days: 7 }
    }
}
