//! The NA's public views computed straight from a store at a given time, without a running NA:
//! what an incident bundle records when the live NA cannot be reached. Each view is rendered by the
//! route code that serves it, so the bytes match what `gm serve` would answer (the `/metrics` HTTP
//! counters excepted: they live only in a running server). Reads only; routes stay the one place
//! that knows how a view is built.

use chrono::{DateTime, Utc};

use crate::store::Store;

use super::error::NaError;

/// The `/connectome.json` body.
pub(crate) fn connectome_json(store: &Store, now: DateTime<Utc>) -> Result<Vec<u8>, NaError> {
    super::routes::connectome::connectome_body_from_store(store, now)
}

/// The `/metrics` text: the NA gauges as served, HTTP counters empty.
pub(crate) fn metrics_text(store: &Store, now: DateTime<Utc>) -> Result<String, NaError> {
    super::routes::public::metrics_text_from_store(store, now)
}
