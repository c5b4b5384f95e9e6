//! Progress on stderr for long managed operations: one line, redrawn at most four times a second,
//! shown only when stderr is a terminal (cron, systemd and pipes stay quiet) and cleared at the end.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ops::progress::Progress;

/// Draws progress on a terminal; does nothing otherwise.
pub(crate) struct Terminal {
    enabled: bool,
    last: Mutex<Option<(Instant, &'static str)>>,
}

impl Terminal {
    /// Enabled when stderr is a terminal.
    pub(crate) fn for_stderr() -> Terminal {
        Terminal { enabled: std::io::stderr().is_terminal(), last: Mutex::new(None) }
    }
}

fn line(phase: &str, done: u64, total: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if total == 0 {
        format!("{phase}: {:.1} MiB", done as f64 / MIB)
    } else {
        let pct = (done.min(total) as f64 / total as f64) * 100.0;
        format!("{phase}: {pct:5.1}% ({:.1} / {:.1} MiB)", done as f64 / MIB, total as f64 / MIB)
    }
}

impl Progress for Terminal {
    fn update(&self, phase: &'static str, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = match *last {
            Some((at, shown)) => shown != phase || now.duration_since(at) >= Duration::from_millis(250),
            None => true,
        };
        if due || (total > 0 && done >= total) {
            *last = Some((now, phase));
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K{}", line(phase, done, total));
        }
    }

    fn finish(&self) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if self.enabled && last.take().is_some() {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_percent_and_mebibytes_or_bytes_so_far() {
        assert_eq!(line("snapshot", 512 * 1024, 1024 * 1024), "snapshot:  50.0% (0.5 / 1.0 MiB)");
        assert_eq!(line("decrypt", 3 * 1024 * 1024, 0), "decrypt: 3.0 MiB");
        assert_eq!(line("x", 5, 4), "x: 100.0% (0.0 / 0.0 MiB)");
    }
}
