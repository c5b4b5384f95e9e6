//! Progress of long operations (`gm managed backup|verify|restore` on a large database). `ops`
//! never prints: it reports phases and counts to a [`Progress`], and the CLI decides whether to
//! show them (only when stderr is a terminal).

use std::io::Read;

/// Receives progress reports; calls are frequent, so implementations must be cheap.
pub trait Progress {
    /// `done` of `total` units (bytes or pages) of `phase` are complete; `total` 0 means unknown.
    fn update(&self, phase: &'static str, done: u64, total: u64);
    /// The operation ended (successfully or not): clear whatever was shown.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: &'static str, _: u64, _: u64) {}
}

/// A reader that reports the bytes read through it.
pub(crate) struct Counting<'a, R> {
    inner: R,
    phase: &'static str,
    done: u64,
    total: u64,
    progress: &'a dyn Progress,
}

impl<'a, R: Read> Counting<'a, R> {
    /// Wraps `inner`, expecting `total` bytes (0 if unknown).
    pub fn new(inner: R, phase: &'static str, total: u64, progress: &'a dyn Progress) -> Counting<'a, R> {
        Counting { inner, phase, done: 0, total, progress }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.update(self.phase, self.done, self.total);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Seen(RefCell<Vec<(&'static str, u64, u64)>>);

    impl Progress for Seen {
        fn update(&self, phase: &'static str, done: u64, total: u64) {
            self.0.borrow_mut().push((phase, done, total));
        }
    }

    #[test]
    fn counting_reader_reports_every_read_and_passes_bytes_through() {
        let seen = Seen(RefCell::new(Vec::new()));
        let data = vec![7u8; 10_000];
        let mut r = Counting::new(&data[..], "read", 10_000, &seen);
        let mut out = Vec::new();
        std::io::copy(&mut r, &mut out).unwrap();
        assert_eq!(out, data);
        let seen = seen.0.into_inner();
        assert_eq!(seen.last().map(|s| (s.1, s.2)), Some((10_000, 10_000)));
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic: {seen:?}");
    }
}
