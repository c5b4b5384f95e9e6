//! `/metrics` (`na-wire.md` §10.2): upstream's five gauges first and unchanged (names, help, type —
//! including the `_total` gauges operators' alerts use), then gm's own series in Prometheus text
//! format 0.0.4: request counts by route and status, a request-duration histogram, DB size and
//! build info.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upstream's five gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NaGauges {
    /// Rows in `issued_certs`.
    pub issued_certs_total: i64,
    /// Size of the `/nodes` set.
    pub active_nodes: i64,
    /// Rows with status `revoked`.
    pub revoked_certs_total: i64,
    /// Active CRL sequence (0 when none).
    pub crl_sequence: i64,
    /// Rows in `policy_versions`.
    pub policy_versions_total: i64,
}

/// Upper bounds of the request-duration histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/// gm's own request metrics, updated once per request.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl HttpMetrics {
    /// Records one handled request.
    pub(crate) fn observe(&self, route: &'static str, status: u16, elapsed: Duration) {
        {
            let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *map.entry((route, status)).or_insert(0) += 1;
        }
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP gm_http_requests_total HTTP requests handled by gm, by route and status.\n");
        out.push_str("# TYPE gm_http_requests_total counter\n");
        let snapshot: Vec<((&str, u16), u64)> = {
            let map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (*k, *v)).collect()
        };
        for ((route, status), n) in snapshot {
            let _ = writeln!(out, "gm_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP gm_http_request_duration_seconds Time gm spent handling a request, excluding network I/O.\n",
        );
        out.push_str("# TYPE gm_http_request_duration_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "gm_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "gm_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "gm_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "gm_http_request_duration_seconds_count {count}");
    }
}

/// Renders the whole `/metrics` body.
pub(crate) fn render(gauges: &NaGauges, http: &HttpMetrics, db_size_bytes: u64) -> String {
    let mut out = String::with_capacity(2048);
    let upstream: [(&str, &str, i64); 5] = [
        (
            "genesis_mesh_na_issued_certs_total",
            "Total certificates issued by the Network Authority.",
            gauges.issued_certs_total,
        ),
        ("genesis_mesh_na_active_nodes", "Current recently active nodes.", gauges.active_nodes),
        ("genesis_mesh_na_revoked_certs_total", "Total certificates marked revoked.", gauges.revoked_certs_total),
        ("genesis_mesh_na_crl_sequence", "Active certificate revocation list sequence.", gauges.crl_sequence),
        ("genesis_mesh_na_policy_versions_total", "Persisted policy versions.", gauges.policy_versions_total),
    ];
    for (name, help, value) in upstream {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    http.render(&mut out);
    out.push_str("# HELP gm_db_size_bytes Size of the NA database file plus its write-ahead log.\n");
    out.push_str("# TYPE gm_db_size_bytes gauge\n");
    let _ = writeln!(out, "gm_db_size_bytes {db_size_bytes}");
    out.push_str("# HELP gm_build_info Build of the running gm; the value is always 1.\n");
    out.push_str("# TYPE gm_build_info gauge\n");
    let _ = writeln!(out, "gm_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_gauges_come_first_exactly() {
        let text = render(&NaGauges::default(), &HttpMetrics::default(), 0);
        let expected =
            "# HELP genesis_mesh_na_issued_certs_total Total certificates issued by the Network Authority.\n\
# TYPE genesis_mesh_na_issued_certs_total gauge\n\
genesis_mesh_na_issued_certs_total 0\n\
# HELP genesis_mesh_na_active_nodes Current recently active nodes.\n\
# TYPE genesis_mesh_na_active_nodes gauge\n\
genesis_mesh_na_active_nodes 0\n\
# HELP genesis_mesh_na_revoked_certs_total Total certificates marked revoked.\n\
# TYPE genesis_mesh_na_revoked_certs_total gauge\n\
genesis_mesh_na_revoked_certs_total 0\n\
# HELP genesis_mesh_na_crl_sequence Active certificate revocation list sequence.\n\
# TYPE genesis_mesh_na_crl_sequence gauge\n\
genesis_mesh_na_crl_sequence 0\n\
# HELP genesis_mesh_na_policy_versions_total Persisted policy versions.\n\
# TYPE genesis_mesh_na_policy_versions_total gauge\n\
genesis_mesh_na_policy_versions_total 0\n";
        assert!(text.starts_with(expected), "{text}");
    }
}
