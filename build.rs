//! Embeds the build time as `GM_BUILD_EPOCH` (Unix seconds) for the clock sanity warnings of `gm serve`
//! and `gm readiness` (issue 8 item 5): a system clock earlier than the build is certainly wrong.
//!
//! Reproducible builds set `SOURCE_DATE_EPOCH` (reproducible-builds.org) and get exactly that value;
//! otherwise the build machine's clock is used. The script reruns only when `SOURCE_DATE_EPOCH`
//! changes, so incremental builds keep the first build's time, which is still a valid lower bound.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    println!("cargo:rustc-env=GM_BUILD_EPOCH={epoch}");
}
