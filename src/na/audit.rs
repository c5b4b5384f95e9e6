//! Audit events in upstream's row format (`na-wire.md` §14): `event_json` is
//! `{"created_at", "details", "event_id", "event_type"}` with sorted keys, Python's default `", "` and
//! `": "` separators and ASCII escapes, so upstream tools read gm's events unchanged. Invite tokens,
//! signatures and private keys never appear in details (tokens only as their fingerprint).

use crate::store::Connection;
use chrono::{DateTime, Utc};

use crate::crypto::canonical::{to_string_with, Style};
use crate::crypto::digest::uuid4;
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::store::{audit, Store, StoreError};

/// Builds the details object from `(key, value)` pairs.
pub(crate) fn details(pairs: Vec<(&str, Value)>) -> Map {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// An event rendered ahead of its write job, so the single writer thread only runs SQL.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    event_id: String,
    created_at: String,
    json: String,
}

impl Event {
    /// Renders an event of `event_type` with `details` at `now`.
    pub fn new(event_type: &str, details: Map, now: DateTime<Utc>) -> Event {
        let event_id = uuid4();
        let created_at = isoformat_utc(now);
        let mut event = Map::new();
        event.insert("created_at", Value::from(created_at.as_str()));
        event.insert("details", Value::Object(details));
        event.insert("event_id", Value::from(event_id.as_str()));
        event.insert("event_type", Value::from(event_type));
        let json = to_string_with(&Value::Object(event), &Style::PYTHON_DEFAULT);
        Event { event_id, created_at, json }
    }

    /// The rendered `event_json`.
    #[cfg(test)]
    pub(crate) fn json_text(&self) -> &str {
        &self.json
    }

    /// Appends the event inside a write job.
    pub fn write(&self, conn: &Connection) -> Result<(), StoreError> {
        audit::insert(conn, &self.event_id, &self.json, &self.created_at)
    }
}

/// Writes one event inside a write job.
pub fn write(conn: &Connection, event_type: &str, details: Map, now: DateTime<Utc>) -> Result<(), StoreError> {
    Event::new(event_type, details, now).write(conn)
}

/// Writes pre-rendered events in one write job; failures are logged and swallowed like [`record`].
pub(crate) fn record_events(store: &Store, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = store.write(move |c| events.iter().try_for_each(|ev| ev.write(c))) {
        log::error!(target: "gm::audit", "cannot write audit events: {e}");
    }
}

/// Writes one event on its own. Failures are logged and swallowed, as upstream does for
/// authentication failures (the request still fails closed).
pub(crate) fn record(store: &Store, event_type: &'static str, details: Map, now: DateTime<Utc>) {
    if let Err(e) = store.write(move |c| write(c, event_type, details, now)) {
        log::error!(target: "gm::audit", "cannot write audit event {event_type}: {e}");
    }
}
