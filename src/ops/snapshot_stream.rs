//! The backup's scratch snapshot written in one pass over the live database's pages
//! ([`crate::store::snapshot::stream_pages`], one read transaction), with readers on other threads
//! that follow the file as it grows: the archive and the SHA-256 read each piece from the page
//! cache right after it is written, so the snapshot is archived and hashed while it is copied,
//! and `integrity_check` can start on the finished file while the archive is still being written.
//!
//! It owns the scratch file and the shared progress of its writing; it must not decide what goes
//! into the manifest or the archive (that is `backup.rs`), and it never keeps pages in memory
//! beyond one piece (the readers read the file, not a queue).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::files::private::create_new_private;
use crate::store::{snapshot, Connection};

use super::error::{io, OpsError};
use super::progress::Progress;

/// Bytes written to the file at once (and published to the readers): small enough to stay in the
/// CPU cache between the copy and the write (1 MiB writes measured up to 3× the kernel time).
const PIECE_BYTES: usize = 128 << 10;

/// How far the snapshot file has been written, shared with its readers.
#[derive(Debug, Default)]
struct State {
    /// The file's final size, once the read transaction has fixed it.
    total: Option<u64>,
    /// Bytes written so far.
    written: u64,
    /// The writing stopped before the end (the readers then fail).
    failed: bool,
}

/// The scratch snapshot being written: one writer ([`GrowingFile::write_from`]) and any number of
/// [`Follower`]s on other threads.
pub(crate) struct GrowingFile {
    path: PathBuf,
    state: Mutex<State>,
    grown: Condvar,
}

impl GrowingFile {
    /// A new private (0600) file at `path`, which must not exist.
    pub(crate) fn create(path: &Path) -> Result<(GrowingFile, File), OpsError> {
        let file = create_new_private(path).map_err(io("create", path))?;
        Ok((GrowingFile { path: path.to_path_buf(), state: Mutex::new(State::default()), grown: Condvar::new() }, file))
    }

    /// Writes every page of `src` (one read transaction) into `file`, publishing each piece to the
    /// readers; returns the file's size. On any error the readers are told the file will not grow.
    /// The readers are told even when the writing unwinds from a panic.
    pub(crate) fn write_from(&self, src: &Connection, file: File, progress: &dyn Progress) -> Result<u64, OpsError> {
        let mut ending = Ending { growing: self, failed: true };
        let written = self.write_pages(src, file, progress);
        ending.failed = written.is_err();
        written
    }

    /// Tells the readers the file will not be completed (idempotent): a writing that never started
    /// (no database connection could be had) must not leave them, and the backup, waiting forever.
    pub(crate) fn abandon(&self) {
        self.lock().failed = true;
        self.grown.notify_all();
    }

    fn write_pages(&self, src: &Connection, mut file: File, progress: &dyn Progress) -> Result<u64, OpsError> {
        // Pages read from the mapped file skip a read call and a copy each (the pending-byte page
        // and WAL frames are still read the usual way). Only this read-only connection maps.
        src.execute_batch("PRAGMA mmap_size = 2147418112")
            .map_err(crate::store::StoreError::sqlite("mapping the database"))?;
        let mut piece: Vec<u8> = Vec::with_capacity(PIECE_BYTES);
        let total = std::cell::Cell::new(0u64);
        let mut done = 0u64;
        let mut flush = |piece: &mut Vec<u8>, done: &mut u64| -> Result<(), OpsError> {
            file.write_all(piece).map_err(io("write", &self.path))?;
            *done += piece.len() as u64;
            piece.clear();
            self.lock().written = *done;
            self.grown.notify_all();
            Ok(())
        };
        snapshot::stream_pages(
            src,
            |page_size, pages| {
                total.set(u64::from(page_size) * pages);
                self.lock().total = Some(total.get());
                self.grown.notify_all();
                Ok::<(), OpsError>(())
            },
            |page| {
                piece.extend_from_slice(page);
                if piece.len() >= PIECE_BYTES {
                    flush(&mut piece, &mut done)?;
                    progress.update("snapshot", done, total.get());
                }
                Ok(())
            },
        )?;
        flush(&mut piece, &mut done)?;
        progress.update("snapshot", done, total.get());
        Ok(done)
    }

    /// The file's size once known (waits for the read transaction to start); `None` if the writing
    /// failed first.
    pub(crate) fn total(&self) -> Option<u64> {
        let mut state = self.lock();
        loop {
            if state.failed {
                return None;
            }
            if let Some(total) = state.total {
                return Some(total);
            }
            state = self.grown.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// A reader of the file from its start that waits for bytes not yet written and ends at the
    /// file's final size; buffered, so small reads (tar copies 8 KiB at a time) cost neither a
    /// system call nor the lock each.
    pub(crate) fn follow(&self) -> Result<std::io::BufReader<Follower<'_>>, OpsError> {
        let file = File::open(&self.path).map_err(io("read", &self.path))?;
        Ok(std::io::BufReader::with_capacity(PIECE_BYTES, Follower { growing: self, file, pos: 0 }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until more than `pos` bytes are written (or the end): how many may be read at `pos`.
    fn available(&self, pos: u64) -> std::io::Result<u64> {
        let mut state = self.lock();
        loop {
            if state.written > pos {
                return Ok(state.written - pos);
            }
            if state.failed {
                return Err(std::io::Error::other("the snapshot could not be completed"));
            }
            if state.total.is_some_and(|t| pos >= t) {
                return Ok(0);
            }
            state = self.grown.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// Wakes the readers when [`GrowingFile::write_from`] returns or unwinds; failed unless it
/// returned the file's size.
struct Ending<'a> {
    growing: &'a GrowingFile,
    failed: bool,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        if self.failed {
            self.growing.abandon();
        } else {
            self.growing.grown.notify_all();
        }
    }
}

/// Reads a [`GrowingFile`] as it is written.
pub(crate) struct Follower<'a> {
    growing: &'a GrowingFile,
    file: File,
    pos: u64,
}

impl Read for Follower<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let ready = self.growing.available(self.pos)?;
        let want = buf.len().min(usize::try_from(ready).unwrap_or(usize::MAX));
        let Some(into) = buf.get_mut(..want) else { return Ok(0) };
        let n = self.file.read_at(into, self.pos)?;
        if n == 0 && want > 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the snapshot file shrank"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ops::progress::Silent;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-growing-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A database of `rows` rows of 1,000 bytes in WAL mode, its rows still in the WAL.
    fn database(dir: &Path, rows: i64) -> Connection {
        let conn = Connection::open(dir.join("src.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB)").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        for _ in 0..rows {
            conn.execute("INSERT INTO t VALUES (randomblob(1000))", []).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        conn
    }

    fn read_all(growing: &GrowingFile) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        growing.follow().map_err(|e| std::io::Error::other(e.to_string()))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn followers_read_the_whole_snapshot_while_it_is_written() {
        let dir = temp_dir("whole");
        let src = database(&dir, 600);
        let (growing, file) = GrowingFile::create(&dir.join("snap")).unwrap();
        let (size, followed, total) = std::thread::scope(|scope| {
            let first = scope.spawn(|| read_all(&growing));
            let second = scope.spawn(|| (growing.total(), read_all(&growing)));
            let size = growing.write_from(&src, file, &Silent).unwrap();
            let (total, second) = second.join().unwrap();
            (size, [first.join().unwrap().unwrap(), second.unwrap()], total)
        });
        let on_disk = std::fs::read(dir.join("snap")).unwrap();
        assert!(size > 600 * 1000, "{size}");
        assert_eq!(total, Some(size));
        assert_eq!(on_disk.len() as u64, size);
        for f in followed {
            assert!(f == on_disk, "a follower read {} bytes that differ from the file", f.len());
        }
        let copy = Connection::open(dir.join("snap")).unwrap();
        let rows: i64 = copy.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 600);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn abandoning_a_writing_that_never_started_releases_every_waiting_follower() {
        let dir = temp_dir("abandon");
        let (growing, _file) = GrowingFile::create(&dir.join("snap")).unwrap();
        let (total, read) = std::thread::scope(|scope| {
            let waiting_total = scope.spawn(|| growing.total());
            let waiting_read = scope.spawn(|| read_all(&growing));
            std::thread::sleep(std::time::Duration::from_millis(50));
            growing.abandon();
            (waiting_total.join().unwrap(), waiting_read.join().unwrap())
        });
        assert_eq!(total, None);
        let err = read.unwrap_err();
        assert!(err.to_string().contains("could not be completed"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Panics from the progress display (or anything else on the writing thread) must not leave
    /// the archive and hash threads waiting for bytes that never come.
    #[test]
    fn a_writing_that_panics_releases_its_followers_with_an_error() {
        struct Exploding;
        impl Progress for Exploding {
            fn update(&self, _: &'static str, _: u64, _: u64) {
                panic!("progress display failed");
            }
        }
        let dir = temp_dir("panic");
        let src = database(&dir, 300);
        let (growing, file) = GrowingFile::create(&dir.join("snap")).unwrap();
        let read = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            let growing = &growing;
            scope.spawn(move || tx.send(read_all(growing)));
            let wrote =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| growing.write_from(&src, file, &Exploding)));
            assert!(wrote.is_err(), "the progress display panicked");
            let read = rx.recv_timeout(std::time::Duration::from_secs(10));
            growing.abandon(); // so a failing run ends instead of hanging in the scope
            read.expect("the follower is still waiting 10 s after the writing panicked")
        });
        let err = read.unwrap_err();
        assert!(err.to_string().contains("could not be completed"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
