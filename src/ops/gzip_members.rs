//! Parallel gzip that stock tools read: the stream is cut into fixed-size chunks, each chunk is
//! deflated on a worker thread into a complete gzip member (RFC 1952 §2.2: a gzip file is a series
//! of members), and the members are written in order. `gzip -d`, `tar xzf` and
//! `flate2::read::MultiGzDecoder` read the result as one stream.
//!
//! Each member names its own length in a gzip extra subfield (`GM`, 4 bytes, little-endian; the
//! same idea as BGZF's `BC`), so a reader can hand whole members to workers without inflating
//! first. Streams without that field (another tool's gzip, a single-member archive) are read by
//! one `MultiGzDecoder`. Memory stays bounded: at most two chunks per worker are in flight, and a
//! member or its inflated chunk above [`MAX_MEMBER_BYTES`] is refused.
//!
//! Worker failures (including a panic) come back as `io::Error`s on the caller's thread; no
//! worker's panic crosses into the caller. This module must not know what the chunks contain.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::Compression;

/// Uncompressed bytes per gzip member. Measured on the 1.2 GiB database of scripts/bench-backup.sh
/// (level 1, 2 cores, two runs each): 256 KiB 9.6 s, 1 MiB 9.0-11.0 s, 2 MiB 8.3-8.8 s, 4 MiB
/// 7.2-8.3 s; restarting the deflate state per member costs 1.4 %, 0.4 %, 0.1 % and 0 % in size
/// against 4 MiB. Peak RSS grows with it (23 MiB at 2 MiB, 34 MiB at 4 MiB): four chunks in flight.
pub(crate) const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Largest member (compressed) or inflated member accepted when reading. gm writes members of at
/// most [`CHUNK_BYTES`] plus deflate's stored-block overhead; the cap stops a hostile length field
/// or a deflate bomb from allocating without bound.
pub(crate) const MAX_MEMBER_BYTES: usize = 16 * CHUNK_BYTES;

/// More threads than this do not help (the age stream is written by one thread) and cost memory.
const MAX_WORKERS: usize = 8;

/// The fixed member header gm writes: magic, deflate, FEXTRA, mtime 0, XFL, OS 255 (unknown),
/// XLEN 8, then the `GM` subfield of length 4 holding the whole member's length.
const HEADER_BYTES: usize = 20;
const TRAILER_BYTES: usize = 8;
const FEXTRA: u8 = 0x04;
const SUBFIELD: [u8; 4] = [b'G', b'M', 4, 0];

/// Buffers handed back for reuse by the threads of one stream. musl's malloc (the static build)
/// maps every block over 128 KiB fresh and unmaps it when freed, so a new 4 MiB chunk, 1 MiB hash
/// piece or compressed member per step cost page faults, the kernel zeroing each page, and a TLB
/// shootdown of the other core per unmap (~4,000 unmaps in one verify of a 1.1 GiB backup). Keeps
/// at most [`Spares::MAX`] buffers of at most [`Spares::MAX_BYTES`] each: a crafted archive's
/// members (up to [`MAX_MEMBER_BYTES`]) are not kept, so what the spares hold stays under 64 MiB.
#[derive(Clone, Default)]
pub(crate) struct Spares(Arc<Mutex<Vec<Vec<u8>>>>);

impl Spares {
    /// Buffers kept: enough for the chunks and members in flight between the pool's threads.
    const MAX: usize = 8;
    /// Largest buffer kept: a chunk and its stored-block overhead, with room to spare.
    const MAX_BYTES: usize = 2 * CHUNK_BYTES;

    /// An empty buffer with room for `capacity` bytes: a spare that has it if there is one, else
    /// the biggest spare (grown), else a new one.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let spare = self.0.lock().ok().and_then(|mut spares| {
            let fits =
                spares.iter().enumerate().filter(|(_, b)| b.capacity() >= capacity).min_by_key(|(_, b)| b.capacity());
            let pick = fits.or_else(|| spares.iter().enumerate().max_by_key(|(_, b)| b.capacity())).map(|(i, _)| i);
            pick.map(|i| spares.swap_remove(i))
        });
        let mut buf = spare.unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Hands `buf` back (dropped when [`Spares::MAX`] are kept already).
    pub(crate) fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > Self::MAX_BYTES {
            return;
        }
        if let Ok(mut spares) = self.0.lock() {
            if spares.len() < Self::MAX {
                spares.push(buf);
            }
        }
    }
}

/// Worker threads to use: the machine's parallelism, at least one, at most [`MAX_WORKERS`].
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS)
}

/// A `Write` that gzips in parallel into `inner`. Call [`MemberWriter::finish`]: dropping it
/// discards the buffered tail and the stream is incomplete.
pub struct MemberWriter<W: Write> {
    inner: W,
    pool: OrderedPool,
    buf: Vec<u8>,
    chunk_bytes: usize,
    members: u64,
}

impl<W: Write> MemberWriter<W> {
    /// Starts a writer at gzip `level` (0 stores, 9 is smallest) with `workers` threads.
    pub fn new(inner: W, level: u32, workers: usize) -> io::Result<MemberWriter<W>> {
        let level = Compression::new(level.min(9));
        let work: Work = Arc::new(move |chunk, spares| {
            let member = deflate_member(&chunk, level, spares.take(chunk.len() / 2 + 64));
            spares.give(chunk);
            member
        });
        let pool = OrderedPool::start("gzip-deflate", workers, work)?;
        let chunk_bytes = CHUNK_BYTES;
        Ok(MemberWriter { inner, pool, buf: Vec::with_capacity(chunk_bytes), chunk_bytes, members: 0 })
    }

    /// Compresses the tail, writes every member in order, stops the workers and returns `inner`.
    /// An empty stream still gets one (empty) member, so the output is always valid gzip.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while let Some(member) = self.pool.next() {
            self.write_member(member?)?;
        }
        self.pool.stop()?;
        Ok(self.inner)
    }

    fn submit(&mut self) -> io::Result<()> {
        while self.pool.is_full() {
            match self.pool.next() {
                Some(member) => self.write_member(member?)?,
                None => break,
            }
        }
        let chunk = std::mem::replace(&mut self.buf, self.pool.spares.take(self.chunk_bytes));
        self.members += 1;
        self.pool.submit(chunk)
    }

    fn write_member(&mut self, member: Vec<u8>) -> io::Result<()> {
        self.inner.write_all(&member)?;
        self.pool.spares.give(member);
        Ok(())
    }
}

impl<W: Write> Write for MemberWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_bytes.saturating_sub(self.buf.len());
        let n = room.min(data.len());
        self.buf.extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= self.chunk_bytes {
            self.submit()?;
        }
        Ok(n)
    }

    /// Flushes `inner` only: cutting a member here would make members as small as the caller's
    /// flushes, and the tail is written by [`MemberWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Deflates `chunk` into one complete gzip member carrying its own length.
fn deflate_member(chunk: &[u8], level: Compression, mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.clear();
    out.extend_from_slice(&[0x1f, 0x8b, 8, FEXTRA, 0, 0, 0, 0, xfl(level), 255, 8, 0]);
    out.extend_from_slice(&SUBFIELD);
    out.extend_from_slice(&[0; 4]);
    let mut out = if level.level() == 0 {
        store_blocks(out, chunk)
    } else {
        let mut deflate = flate2::write::DeflateEncoder::new(out, level);
        deflate.write_all(chunk)?;
        deflate.finish()?
    };
    let mut crc = flate2::Crc::new();
    crc.update(chunk);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    let total = u32::try_from(out.len()).map_err(|_| io::Error::other("a gzip member exceeds 4 GiB"))?;
    if let Some(field) = out.get_mut(16..20) {
        field.copy_from_slice(&total.to_le_bytes());
    }
    Ok(out)
}

/// Level 0 as deflate stored blocks (RFC 1951 §3.2.4), written directly: a plain copy, where
/// flate2's level 0 still runs the compressor's match loop (a 1.2 GiB backup took 17.0 s that way,
/// 8.7 s with this, 8.6 s at level 1).
fn store_blocks(mut out: Vec<u8>, chunk: &[u8]) -> Vec<u8> {
    const MAX_STORED: usize = 65_535;
    out.reserve(chunk.len() + 5 * (chunk.len() / MAX_STORED + 1));
    let mut blocks = chunk.chunks(MAX_STORED).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.push(u8::from(blocks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out
}

/// gzip's XFL byte as `gzip` and flate2 set it: 2 for the slowest level, 4 for the fastest.
fn xfl(level: Compression) -> u8 {
    match level.level() {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    }
}

/// A `Read` of the gzip stream in `inner`, inflated in parallel when every member carries gm's
/// length field, else by one `MultiGzDecoder`.
pub(crate) struct MemberReader<R: Read> {
    mode: Mode<R>,
}

enum Mode<R: Read> {
    Parallel { inner: R, pool: OrderedPool, chunk: Vec<u8>, pos: usize, at_end: bool },
    Sequential(Box<flate2::read::MultiGzDecoder<io::Chain<io::Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> MemberReader<R> {
    /// Looks at the first member header of `inner` and picks the parallel or sequential path.
    pub fn new(mut inner: R, workers: usize) -> io::Result<MemberReader<R>> {
        let mut head = vec![0u8; HEADER_BYTES];
        let got = read_full(&mut inner, &mut head)?;
        head.truncate(got);
        if got < HEADER_BYTES || member_len(&head).is_none() {
            let chained = io::Cursor::new(head).chain(inner);
            return Ok(MemberReader { mode: Mode::Sequential(Box::new(flate2::read::MultiGzDecoder::new(chained))) });
        }
        let work: Work = Arc::new(|member, spares| {
            let chunk = inflate_member(&member, spares.take(CHUNK_BYTES));
            spares.give(member);
            chunk
        });
        let pool = OrderedPool::start("gzip-inflate", workers, work)?;
        let mut reader =
            MemberReader { mode: Mode::Parallel { inner, pool, chunk: Vec::new(), pos: 0, at_end: false } };
        if let Mode::Parallel { inner, pool, .. } = &mut reader.mode {
            let member = read_member_body(inner, head)?;
            pool.submit(member)?;
        }
        Ok(reader)
    }
}

impl<R: Read> Read for MemberReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let (inner, pool, chunk, pos, at_end) = match &mut self.mode {
            Mode::Sequential(d) => return d.read(out),
            Mode::Parallel { inner, pool, chunk, pos, at_end } => (inner, pool, chunk, pos, at_end),
        };
        while *pos >= chunk.len() {
            while !*at_end && !pool.is_full() {
                match read_member(inner, &pool.spares)? {
                    Some(member) => pool.submit(member)?,
                    None => *at_end = true,
                }
            }
            match pool.next() {
                Some(next) => {
                    pool.spares.give(std::mem::replace(chunk, next?));
                    *pos = 0;
                }
                None => return Ok(0),
            }
        }
        let available = chunk.get(*pos..).unwrap_or_default();
        let n = available.len().min(out.len());
        out.get_mut(..n).unwrap_or_default().copy_from_slice(available.get(..n).unwrap_or_default());
        *pos += n;
        Ok(n)
    }
}

/// The next whole member, or `None` at a clean end of stream.
fn read_member(inner: &mut impl Read, spares: &Spares) -> io::Result<Option<Vec<u8>>> {
    let mut head = spares.take(HEADER_BYTES);
    head.resize(HEADER_BYTES, 0);
    match read_full(inner, &mut head)? {
        0 => Ok(None),
        HEADER_BYTES => read_member_body(inner, head).map(Some),
        _ => Err(bad("the gzip stream ends inside a member header")),
    }
}

/// Reads the rest of the member whose 20-byte header is `head`.
fn read_member_body(inner: &mut impl Read, mut head: Vec<u8>) -> io::Result<Vec<u8>> {
    let total = member_len(&head).ok_or_else(|| bad("a gzip member lacks gm's length field (mixed stream)"))?;
    if !(HEADER_BYTES + TRAILER_BYTES..=MAX_MEMBER_BYTES).contains(&total) {
        return Err(bad("a gzip member's length field is out of range"));
    }
    head.resize(total, 0);
    let body = head.get_mut(HEADER_BYTES..).unwrap_or_default();
    if read_full(inner, body)? < body.len() {
        return Err(bad("the gzip stream ends inside a member"));
    }
    Ok(head)
}

/// The member length from a header gm wrote, `None` for any other header.
fn member_len(head: &[u8]) -> Option<usize> {
    let fixed = head.get(..4)? == [0x1f, 0x8b, 8, FEXTRA] && head.get(10..16)? == [8, 0, b'G', b'M', 4, 0];
    let len: [u8; 4] = head.get(16..20)?.try_into().ok()?;
    fixed.then(|| usize::try_from(u32::from_le_bytes(len)).ok()).flatten()
}

/// Inflates one member, checking its CRC and length (flate2 does both) and the size cap.
fn inflate_member(member: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.clear();
    let limit = u64::try_from(MAX_MEMBER_BYTES).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(member).take(limit + 1).read_to_end(&mut out)?;
    if out.len() > MAX_MEMBER_BYTES {
        return Err(bad("a gzip member inflates beyond the size limit"));
    }
    Ok(out)
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match inner.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn bad(problem: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, problem)
}

/// A job's work: its input and the pool's spare buffers (to take its output from and give the
/// input back to).
type WorkFn = dyn Fn(Vec<u8>, &Spares) -> io::Result<Vec<u8>> + Send + Sync;
type Work = Arc<WorkFn>;
type Done = (u64, io::Result<Vec<u8>>);

/// Named worker threads applying `work` to numbered jobs; results come back in submission order.
/// At most `2 × workers` jobs are in flight, so the result channel never blocks a worker.
struct OrderedPool {
    jobs: Option<SyncSender<(u64, Vec<u8>)>>,
    results: Option<Receiver<Done>>,
    workers: Vec<JoinHandle<()>>,
    /// Buffers the pool's user and workers hand back for reuse.
    spares: Spares,
    ready: BTreeMap<u64, io::Result<Vec<u8>>>,
    submitted: u64,
    returned: u64,
    max_in_flight: u64,
}

impl OrderedPool {
    fn start(name: &str, workers: usize, work: Work) -> io::Result<OrderedPool> {
        let workers = workers.clamp(1, MAX_WORKERS);
        let max_in_flight = 2 * workers;
        let (jobs, queue) = sync_channel::<(u64, Vec<u8>)>(max_in_flight);
        let (done, results) = sync_channel::<Done>(max_in_flight);
        let queue = Arc::new(Mutex::new(queue));
        let mut pool = OrderedPool {
            jobs: Some(jobs),
            results: Some(results),
            workers: Vec::with_capacity(workers),
            spares: Spares::default(),
            ready: BTreeMap::new(),
            submitted: 0,
            returned: 0,
            max_in_flight: u64::try_from(max_in_flight).unwrap_or(u64::MAX),
        };
        for i in 0..workers {
            let (queue, done, work, spares) = (queue.clone(), done.clone(), work.clone(), pool.spares.clone());
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || run_worker(&queue, &done, &*work, &spares))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    fn is_full(&self) -> bool {
        self.submitted - self.returned >= self.max_in_flight
    }

    fn submit(&mut self, job: Vec<u8>) -> io::Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other(STOPPED))?;
        jobs.send((self.submitted, job)).map_err(|_| io::Error::other(STOPPED))?;
        self.submitted += 1;
        Ok(())
    }

    /// The next result in submission order (blocking), or `None` when nothing is in flight.
    fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        if self.returned == self.submitted {
            return None;
        }
        loop {
            if let Some(result) = self.ready.remove(&self.returned) {
                self.returned += 1;
                return Some(result);
            }
            match self.results.as_ref().map(Receiver::recv) {
                Some(Ok((seq, result))) => {
                    self.ready.insert(seq, result);
                }
                _ => return Some(Err(io::Error::other(STOPPED))),
            }
        }
    }

    /// Stops and joins the workers; a worker that died outside its job is reported.
    fn stop(mut self) -> io::Result<()> {
        self.jobs = None;
        self.results = None;
        let mut outcome = Ok(());
        for handle in std::mem::take(&mut self.workers) {
            if handle.join().is_err() {
                outcome = Err(io::Error::other(STOPPED));
            }
        }
        outcome
    }
}

impl Drop for OrderedPool {
    /// Error paths drop the pool without [`OrderedPool::stop`]: closing both channels ends every
    /// worker after its current job, and joining them leaves no thread behind.
    fn drop(&mut self) {
        self.jobs = None;
        self.results = None;
        for handle in std::mem::take(&mut self.workers) {
            let _ = handle.join();
        }
    }
}

const STOPPED: &str = "a gzip worker thread stopped unexpectedly (a gm bug; please report it)";

fn run_worker(
    queue: &Mutex<std::sync::mpsc::Receiver<(u64, Vec<u8>)>>,
    done: &SyncSender<Done>,
    work: &WorkFn,
    spares: &Spares,
) {
    loop {
        // The lock is held only while waiting for the next job; a poisoned lock ends the worker.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((seq, input)) = job else { return };
        let result = catch_unwind(AssertUnwindSafe(|| work(input, spares)))
            .unwrap_or_else(|_| Err(io::Error::other("a gzip worker panicked (a gm bug; please report it)")));
        if done.send((seq, result)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: rows of text with a counter, like the database's JSON.
        let mut out = Vec::with_capacity(len);
        let mut i = 0u64;
        while out.len() < len {
            out.extend_from_slice(format!("{{\"cert_id\":\"{i:08x}-0000\",\"n\":{}}}\n", i * 7919 % 1000).as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn compress(data: &[u8], level: u32, workers: usize) -> Vec<u8> {
        let mut w = MemberWriter::new(Vec::new(), level, workers).unwrap();
        // Odd write sizes cross chunk boundaries mid-write.
        for part in data.chunks(777_777) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(reader: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut reader = reader;
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_at_every_level_and_worker_count() {
        let data = sample(5 * CHUNK_BYTES + 12_345);
        for (level, workers) in [(0, 1), (1, 2), (1, 3), (6, 2), (9, 1)] {
            let gz = compress(&data, level, workers);
            assert!(level == 0 || gz.len() < data.len() / 2, "level {level} compressed to {}", gz.len());
            let back = read_all(MemberReader::new(gz.as_slice(), workers).unwrap());
            assert_eq!(back, data, "level {level}, {workers} workers");
        }
    }

    // A spare comes back empty, the one that fits is preferred, and at most MAX are kept.
    #[test]
    fn spares_are_reused_empty_and_bounded() {
        let spares = Spares::default();
        let mut big = spares.take(100_000);
        big.extend_from_slice(b"old contents");
        let big_at = big.as_ptr();
        spares.give(big);
        spares.give(Vec::with_capacity(10));
        let again = spares.take(50_000);
        assert!(again.is_empty(), "a reused buffer starts empty");
        assert_eq!(again.as_ptr(), big_at, "the spare that fits is the one taken");
        let small = spares.take(200_000);
        assert!(small.capacity() >= 200_000, "the biggest spare left is grown to fit");
        for _ in 0..3 * Spares::MAX {
            spares.give(Vec::with_capacity(64));
        }
        spares.give(Vec::new());
        assert_eq!(spares.0.lock().unwrap().len(), Spares::MAX);
        let kept = Spares::default();
        kept.give(Vec::with_capacity(Spares::MAX_BYTES + 1));
        assert!(kept.0.lock().unwrap().is_empty(), "a buffer bigger than any chunk is not kept");
    }

    #[test]
    fn output_is_one_stream_for_multi_gz_decoder() {
        let data = sample(3 * CHUNK_BYTES + 1);
        let gz = compress(&data, 1, 2);
        assert_eq!(read_all(flate2::read::MultiGzDecoder::new(gz.as_slice())), data);
        // A single-member decoder stops after the first member: the stream really has several.
        assert_eq!(read_all(flate2::read::GzDecoder::new(gz.as_slice())).len(), CHUNK_BYTES);
    }

    #[test]
    fn empty_input_is_valid_gzip() {
        let gz = compress(&[], 1, 2);
        assert!(read_all(flate2::read::MultiGzDecoder::new(gz.as_slice())).is_empty());
        assert!(read_all(MemberReader::new(gz.as_slice(), 2).unwrap()).is_empty());
    }

    #[test]
    fn foreign_gzip_is_read_sequentially() {
        let data = sample(CHUNK_BYTES + 99);
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(1));
        one.write_all(&data).unwrap();
        let mut gz = one.finish().unwrap();
        let mut two = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        two.write_all(b"tail").unwrap();
        gz.extend(two.finish().unwrap());
        let mut expected = data.clone();
        expected.extend_from_slice(b"tail");
        assert_eq!(read_all(MemberReader::new(gz.as_slice(), 2).unwrap()), expected);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let data = sample(3 * CHUNK_BYTES);
        let gz = compress(&data, 1, 2);
        let mut flipped = gz.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        let mut out = Vec::new();
        assert!(MemberReader::new(flipped.as_slice(), 2).unwrap().read_to_end(&mut out).is_err());
        let truncated = &gz[..gz.len() - 3];
        assert!(MemberReader::new(truncated, 2).unwrap().read_to_end(&mut Vec::new()).is_err());
        let mut huge = gz.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(MemberReader::new(huge.as_slice(), 2).is_err());
    }

    #[test]
    fn a_failing_worker_surfaces_as_an_error() {
        let work: Work = Arc::new(|job, _| {
            if job == b"boom" {
                panic!("injected");
            }
            Ok(job)
        });
        let mut pool = OrderedPool::start("test", 2, work).unwrap();
        pool.submit(b"fine".to_vec()).unwrap();
        pool.submit(b"boom".to_vec()).unwrap();
        assert_eq!(pool.next().unwrap().unwrap(), b"fine");
        let err = pool.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("gm bug"), "{err}");
        pool.stop().unwrap();
    }

    #[test]
    fn stock_gzip_reads_the_members() {
        let Ok(mut child) = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            return; // no gzip on this machine; the integration test's `tar tzf` covers stock tools too
        };
        let data = sample(3 * CHUNK_BYTES + 4_321);
        let gz = compress(&data, 1, 2);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&gz));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }
}
