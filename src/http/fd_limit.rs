//! The process's open-file limit, raised at server start so `max_connections` fit.
//!
//! Owns: [`raise_open_file_limit`] and its [`FdLimit`] report. Must not log or decide policy: the caller
//! (`gm serve`) logs the outcome and warns when the limit stays too low.
//!
//! Why: every connection holds a descriptor. Most systems start a process with a soft limit of 1024 and a
//! much higher hard limit; at 1024 about a thousand connections make `accept` fail with EMFILE, and new
//! clients time out instead of getting even a 503 (finding F2). Raising the soft limit toward the hard
//! limit is allowed without privileges. Under systemd, `LimitNOFILE=` in the unit sets both.

use std::io;

/// Ceiling used when the hard limit is "unlimited", which Linux does not accept as a soft limit for files.
const UNLIMITED_CEILING: u64 = 1 << 20;

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found at start; `None` means unlimited.
    pub before: Option<u64>,
    /// The soft limit now in force; `None` means unlimited.
    pub now: Option<u64>,
    /// The hard limit; `None` means unlimited.
    pub hard: Option<u64>,
}

impl FdLimit {
    /// Whether at least `needed` descriptors may be open.
    pub(crate) fn allows(&self, needed: u64) -> bool {
        self.now.is_none_or(|now| now >= needed)
    }
}

/// Raises the soft open-file limit to the hard limit (capped at 2^20 when the hard limit is unlimited).
///
/// # Errors
/// What `setrlimit` said (for example EPERM under a seccomp filter); the limit is then unchanged.
pub fn raise_open_file_limit() -> Result<FdLimit, (FdLimit, io::Error)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let found = getrlimit(Resource::Nofile);
    let unchanged = FdLimit { before: found.current, now: found.current, hard: found.maximum };
    let target = found.maximum.unwrap_or(UNLIMITED_CEILING);
    if found.current.is_none_or(|current| current >= target) {
        return Ok(unchanged);
    }
    let wanted = Rlimit { current: Some(target), maximum: found.maximum };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => Ok(FdLimit { now: getrlimit(Resource::Nofile).current, ..unchanged }),
        Err(err) => Err((unchanged, io::Error::from(err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_limit_ends_at_the_hard_limit() {
        let raised = raise_open_file_limit().map_err(|(_, e)| e).unwrap();
        let hard = raised.hard.unwrap_or(UNLIMITED_CEILING);
        assert!(raised.now.is_none_or(|now| now >= hard.min(raised.before.unwrap_or(hard))));
        assert_eq!(raised.now, rustix::process::getrlimit(rustix::process::Resource::Nofile).current);
        assert!(raised.allows(64));
    }
}
