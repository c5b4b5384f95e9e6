//! Helpers shared by the fuzz targets in `fuzz_targets/`: splitting one input into parts, a private
//! scratch folder per process, and the fixed keys and instant of the shared test vectors.
//!
//! Every target follows the house rule that bad input never panics: a target panics (and libFuzzer
//! reports a crash) only when gm itself panics or a stated round-trip property fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// The frozen "now" of the vectors (`upstream_check.server_now`), so their timestamps are fresh.
pub fn vector_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 10).single().unwrap_or_default()
}

/// The operator key of `tests/vectors/admin-requests.json` (`operator-1`), as a seed.
pub const OPERATOR_SEED_B64: &str = "kcEtbrpIkVQ4x8x26K89loTgOPGEsmpGbb2PY9+XYNI=";

/// Splits `data` at the first `separator`: `(before, after)`, or `(data, &[])` without one.
pub fn split_once<'a>(data: &'a [u8], separator: &[u8]) -> (&'a [u8], &'a [u8]) {
    match data.windows(separator.len()).position(|w| w == separator) {
        Some(i) => (&data[..i], &data[i + separator.len()..]),
        None => (data, &[]),
    }
}

/// Cuts `data` into chunks whose lengths come from `plan` (each byte is a length, 0 meaning 1),
/// cycling through `plan`; one chunk when `plan` is empty.
pub fn chunks<'a>(data: &'a [u8], plan: &[u8]) -> Vec<&'a [u8]> {
    if plan.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = usize::from(plan[i % plan.len()]).max(1).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// A fresh empty folder under a per-process scratch folder (in /dev/shm when it exists, so SQLite
/// and archive writes cost no disk syncs); removed again by the caller or the next run.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("gm-fuzz-{}", std::process::id())).join(format!("{name}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the scratch folder can be created");
    dir
}

/// The age identity the archive target decrypts with. A throwaway test key that protects nothing;
/// `scripts/fuzz-corpus.sh` encrypts its seed archives to [`ARCHIVE_RECIPIENT`].
pub const ARCHIVE_IDENTITY: &str = "AGE-SECRET-KEY-1855F8SPRV27LV6MSAPH0JD9EX645QW09PE5XKKSUXEPQWKVTNGXSEG6H2D";

/// The public half of [`ARCHIVE_IDENTITY`].
pub const ARCHIVE_RECIPIENT: &str = "age14957ppanrmh573qf3nwrrv88u280q2nucj8kmeppr35yakzhep5qj28qyt";

/// The passphrase the archive target tries on passphrase-encrypted inputs.
pub const ARCHIVE_PASSPHRASE: &str = "fuzz-passphrase";
