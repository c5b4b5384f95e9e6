//! The backup manifest reader (`src/ops/manifest.rs` `Manifest::parse`), which restore and drill
//! trust only after the archive decrypted, but which must still refuse rather than panic.
//!
//! Input: any bytes, read as UTF-8 text (invalid UTF-8 is skipped: the caller reads a `String`).
//!
//! Properties: no panic; an accepted manifest renders (`to_value`) to a document that parses back
//! to the same manifest. Row counts are compared as a set: the rendering sorts them by table, and
//! `ops/verify.rs` sorts both sides before comparing them with the database's.
#![no_main]

use gm::crypto::canonical::to_pretty_sorted_string;
use gm::ops::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut manifest) = Manifest::parse(text) else { return };
    let rendered = to_pretty_sorted_string(&manifest.to_value());
    manifest.row_counts.sort();
    match Manifest::parse(&rendered) {
        Ok(mut again) => {
            again.row_counts.sort();
            assert_eq!(again, manifest, "a rendered manifest reads back differently: {rendered}");
        }
        Err(err) => panic!("gm's own manifest rendering is refused ({err}): {rendered}"),
    }
});
