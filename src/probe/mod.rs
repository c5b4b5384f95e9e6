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
//! Every check of an `https` target, the TLS expiry check included, verifies the server against
//! one [`Trust`]: the host's CA bundle, or only a private CA bundle (`--ca-file`).
//!
//! This module reads no flags or environment (`cli/probe.rs` builds [`ProbeOptions`]) and prints
//! nothing; it writes only the state file and the textfile it is given, atomically.

pub mod checks;
pub mod deadman;
pub mod error;
mod finding;
pub mod nagios;
pub mod report;
pub mod tls;
pub mod trust;

pub use crate::client::Trust;
pub use error::ProbeError;
pub use finding::{CheckName, CheckResult, Outcome, ProbeOptions, TlsThresholds};
pub use nagios::Status;
