//! The configuration readers: `gm.toml` (`src/config/file.rs` `ConfigFile::parse`, then
//! `src/config/cron.rs` `cron_settings` and the serve settings built from it) and the readiness
//! profile (`src/readiness/profile.rs` `Profile::parse` and its completeness check).
//!
//! Input: any bytes, read as UTF-8 text (invalid UTF-8 is skipped: both are read as `String`).
//!
//! Properties: no panic, whatever the TOML holds (numbers out of range, unknown job kinds, bad
//! schedules, paths, durations).
#![no_main]

use std::path::Path;

use gm::config::cron::cron_settings;
use gm::config::file::ConfigFile;
use gm::config::{serve_settings, Env, ServeFlags};
use gm::readiness::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let home = Path::new("/nonexistent/gm-fuzz-home");
    if let Ok(file) = ConfigFile::parse(text) {
        let _ = cron_settings(home, &file);
        let _ = serve_settings(home, &file, &Env::default(), &ServeFlags::default());
    }
    if let Ok(profile) = Profile::parse(text) {
        let _ = profile.problems();
    }
});
