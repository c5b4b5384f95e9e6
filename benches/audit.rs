//! Audit-insert benchmark (not a timed test): the cost of one `audit_events` insert on the writer,
//! with the partial index `gm_audit_trust_changes` as gm creates it today against the same index
//! spelled as gm did before issue 19's eighth part (an `IN` list, for which SQLite builds and drops
//! a temporary index on every run of the insert). Both databases are created by gm's own
//! `Store::open`, the inserts go through gm's `store::audit::insert` inside one write job, as in a
//! batch of the writer, and the two variants alternate in one run.
//!
//! Usage: cargo bench --bench audit -- [INSERTS=20000] [ROUNDS=3]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use gm::store::error::StoreError;
use gm::store::{audit, OpenMode, Store};

/// The condition of `gm_audit_trust_changes` before the eighth part.
const IN_LIST: &str = "DROP INDEX gm_audit_trust_changes;
CREATE INDEX gm_audit_trust_changes ON audit_events(created_at) WHERE \
(CASE WHEN json_valid(event_json) THEN json_extract(event_json, '$.event_type') END) IN \
('recognition_treaty_issued', 'recognition_treaty_revoked', 'recognition_policy_saved', \
'sovereign_revocation_feed_imported', 'membership_attestation_issued', \
'membership_attestation_revoked', 'policy_published', 'policy_rolled_back', 'certificate_revoked')";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let inserts: usize = args.first().map_or(20_000, |v| v.parse().unwrap());
    let rounds: usize = args.get(1).map_or(3, |v| v.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("gm-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("audit inserts, {inserts} per round, one write job each (1 in 50 a trust change):");
    let mut per = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (v, (name, old)) in [("IN list (before)", true), ("CASE (today)", false)].into_iter().enumerate() {
            let took = run(&dir.join(format!("{round}-{v}.db")), old, inserts);
            let us = took.as_secs_f64() * 1e6 / inserts as f64;
            per[v].push(us);
            println!("  round {round}: {name:<17} {us:6.2} us per insert");
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (before, today) = (median(&mut per[0]), median(&mut per[1]));
    println!("median: before {before:.2} us, today {today:.2} us, today/before {:.2}", today / before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Inserts `n` events into a fresh gm database inside one write job and returns the time the
/// inserts took (the commit's fsync is not counted).
fn run(path: &Path, in_list: bool, n: usize) -> Duration {
    let store = Store::open(path, OpenMode::Serve, "2026-12-06T00:00:00+00:00").unwrap();
    if in_list {
        store
            .write(|c| c.execute_batch(IN_LIST).map_err(|source| StoreError::Sqlite { op: "old index", source }))
            .unwrap();
    }
    store
        .write(move |c| {
            let started = Instant::now();
            for i in 0..n {
                let id = gm::crypto::digest::uuid4();
                let at =
                    format!("2026-12-06T19:{:02}:{:02}.{:06}+00:00", i / 60_000 % 60, i / 1000 % 60, i % 1_000_000);
                let kind = if i % 50 == 0 { "certificate_revoked" } else { "certificate_issued" };
                let json = format!(
                    "{{\"created_at\": \"{at}\", \"details\": {{\"cert_id\": \"{}\", \"remote_addr\": \"10.0.0.1\", \
                     \"roles\": [\"role:client\"]}}, \"event_id\": \"{id}\", \"event_type\": \"{kind}\"}}",
                    gm::crypto::digest::uuid4()
                );
                audit::insert(c, &id, &json, &at)?;
            }
            Ok(started.elapsed())
        })
        .unwrap()
}
