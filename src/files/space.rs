//! Free space of a filesystem, as a share: for `/metrics` (`gm_disk_free_ratio`) and the readiness
//! disk check. Reads only; never creates anything.

use std::path::Path;

/// The share of the filesystem holding `path` that is available to gm (0 to 1), or `None` when it
/// cannot be measured.
pub(crate) fn free_ratio(path: &Path) -> Option<f64> {
    let st = rustix::fs::statvfs(path).ok()?;
    (st.f_blocks > 0).then(|| st.f_bavail as f64 / st.f_blocks as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ratio_is_a_share() {
        let r = free_ratio(Path::new("/")).unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&r), "{r}");
        assert_eq!(free_ratio(Path::new("/nonexistent/gm")), None);
    }
}
