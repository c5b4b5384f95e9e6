//! `manifest.json` of a backup: what was backed up, from which sovereign, and the hashes and counts
//! that verify and restore drills check against.

use crate::store::Connection;
use chrono::{DateTime, Utc};

use crate::json::{parse_str, Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::store::{crl, schema, snapshot, StoreError};

/// Manifest format version.
pub(crate) const FORMAT_VERSION: i64 = 1;

/// What [`Manifest::count`] reads from a snapshot: schema version, rows per table, active CRL
/// sequence and the connectome counts.
pub(crate) type SnapshotCounts = (i64, Vec<(String, i64)>, i64, (i64, i64, i64, i64));

/// The facts a manifest records about a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// When the backup was taken.
    pub created_at: String,
    /// Network (sovereign) name.
    pub network_name: String,
    /// SHA-256 of the genesis file included.
    pub genesis_sha256: String,
    /// Genesis NA public key.
    pub na_public_key: String,
    /// Highest `schema_version`.
    pub schema_version: i64,
    /// SHA-256 of `na.db`.
    pub snapshot_sha256: String,
    /// Size of `na.db`.
    pub snapshot_size: u64,
    /// Rows per table.
    pub row_counts: Vec<(String, i64)>,
    /// Active CRL sequence.
    pub crl_sequence: i64,
    /// `(recognition edges, active edges, revoked edges, imported revocations)`.
    pub connectome: (i64, i64, i64, i64),
}

impl Manifest {
    /// Reads the counts of a snapshot opened read-only.
    pub fn count(conn: &Connection, now: DateTime<Utc>) -> Result<SnapshotCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            snapshot::row_counts(conn)?.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
        let imported = rows.iter().find(|(t, _)| t == "imported_sovereign_revocations").map_or(0, |(_, n)| *n);
        let (edges, active, revoked) = snapshot::treaty_counts(conn, &isoformat_utc(now))?;
        Ok((schema::current_version(conn)?, rows, crl::active_sequence(conn)?, (edges, active, revoked, imported)))
    }

    /// The JSON document.
    pub fn to_value(&self) -> Value {
        let mut counts = Map::new();
        for (t, n) in &self.row_counts {
            counts.insert(t.clone(), Value::from(*n));
        }
        let (edges, active, revoked, imported) = self.connectome;
        let summary: Map = [
            ("active_edge_count", active),
            ("imported_revocation_count", imported),
            ("recognition_edge_count", edges),
            ("revoked_edge_count", revoked),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
        let mut snapshot = Map::new();
        snapshot.insert("file", Value::from("na.db"));
        snapshot.insert("sha256", Value::from(self.snapshot_sha256.as_str()));
        snapshot.insert("size_bytes", Value::from(self.snapshot_size));
        let mut m = Map::new();
        m.insert("format", Value::from("gm-backup"));
        m.insert("format_version", Value::from(FORMAT_VERSION));
        m.insert("created_at", Value::from(self.created_at.as_str()));
        m.insert("gm_version", Value::from(env!("CARGO_PKG_VERSION")));
        m.insert("network_name", Value::from(self.network_name.as_str()));
        m.insert("genesis_sha256", Value::from(self.genesis_sha256.as_str()));
        m.insert("na_public_key", Value::from(self.na_public_key.as_str()));
        m.insert("schema_version", Value::from(self.schema_version));
        m.insert("snapshot", Value::Object(snapshot));
        m.insert("row_counts", Value::Object(counts));
        m.insert("crl_sequence", Value::from(self.crl_sequence));
        m.insert("connectome_summary", Value::Object(summary));
        Value::Object(m)
    }

    /// Reads a manifest document.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let v = parse_str(text).map_err(|e| e.to_string())?;
        let s = |k: &str| {
            v.as_object()
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(format!("missing {k}"))
        };
        let i = |m: &Value, k: &str| {
            m.as_object().and_then(|m| m.get(k)).and_then(Value::as_i64).ok_or(format!("missing {k}"))
        };
        if i(&v, "format_version")? != FORMAT_VERSION {
            return Err("unknown manifest format_version".to_string());
        }
        let snapshot = v.as_object().and_then(|m| m.get("snapshot")).cloned().ok_or("missing snapshot")?;
        let summary =
            v.as_object().and_then(|m| m.get("connectome_summary")).cloned().ok_or("missing connectome_summary")?;
        let row_counts = v
            .as_object()
            .and_then(|m| m.get("row_counts"))
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, n)| (k.to_string(), n.as_i64().unwrap_or(-1))).collect())
            .ok_or("missing row_counts")?;
        Ok(Manifest {
            created_at: s("created_at")?,
            network_name: s("network_name")?,
            genesis_sha256: s("genesis_sha256")?,
            na_public_key: s("na_public_key")?,
            schema_version: i(&v, "schema_version")?,
            snapshot_sha256: snapshot
                .as_object()
                .and_then(|m| m.get("sha256"))
                .and_then(Value::as_str)
                .ok_or("missing snapshot.sha256")?
                .to_string(),
            snapshot_size: u64::try_from(i(&snapshot, "size_bytes")?).map_err(|_| "bad snapshot size".to_string())?,
            row_counts,
            crl_sequence: i(&v, "crl_sequence")?,
            connectome: (
                i(&summary, "recognition_edge_count")?,
                i(&summary, "active_edge_count")?,
                i(&summary, "revoked_edge_count")?,
                i(&summary, "imported_revocation_count")?,
            ),
        })
    }
}
