//! The backup archive reader (`src/ops/archive.rs` `extract`): age decryption, gm's multi-member
//! gzip (`gzip_members.rs`, parallel and sequential paths) and the bounded tar unpacking.
//!
//! Input: byte 0 picks what the rest is, so every layer sees fuzzer-chosen bytes even though the
//! layers below age are authenticated:
//! - 0: the archive file, decrypted with an identity;
//! - 1: the archive file, decrypted with a passphrase;
//! - 2: the plaintext (a gzip stream of a tar), encrypted here, then extracted;
//! - 3: a tar stream, compressed here by gm's own gzip writer and encrypted, then extracted.
//!
//! Properties: no panic; only the four expected names are ever written, each digest is the SHA-256
//! of the file written; the output folder holds nothing else.
#![no_main]

use std::io::Write;
use std::path::Path;

use gm::crypto::digest::sha256_hex;
use gm::ops::archive::{extract, read_identities, read_passphrase, ExtractLimits, Key, ENTRIES};
use gm::ops::gzip_members::MemberWriter;
use gm::ops::progress::Silent;
use gm_fuzz::{scratch_dir, ARCHIVE_IDENTITY, ARCHIVE_PASSPHRASE, ARCHIVE_RECIPIENT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    KEYS.with(|keys| run(mode, rest, keys));
});

fn run(mode: u8, rest: &[u8], keys: &Keys) {
    let (archive, key) = match mode % 4 {
        0 => (rest.to_vec(), &keys.identity),
        1 => (rest.to_vec(), &keys.passphrase),
        2 => (encrypt(rest), &keys.identity),
        _ => (encrypt(&gzip(rest)), &keys.identity),
    };
    let dir = scratch_dir("archive");
    let file = dir.join("backup.age");
    std::fs::write(&file, &archive).expect("write the archive");
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("create the output folder");
    // The bounds gm applies to every archive it reads, with a small total so one input cannot
    // fill the fuzzing machine's disk.
    let limits = ExtractLimits { max_unpacked_bytes: 64 << 20, ..ExtractLimits::default() };
    if let Ok(digests) = extract(&file, key, &out, &limits, &Silent) {
        for (name, digest) in &digests {
            assert!(ENTRIES.contains(&name.as_str()), "unexpected entry {name:?} extracted");
            let written = std::fs::read(out.join(name)).expect("an extracted entry");
            assert_eq!(&sha256_hex(&written), digest, "digest of {name} differs from the bytes written");
        }
        let names = std::fs::read_dir(&out).expect("list the output").count();
        assert_eq!(names, digests.len(), "files in the output folder that extract did not report");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

struct Keys {
    identity: Key,
    passphrase: Key,
}

thread_local! {
    /// age identities are not `Sync`; libFuzzer calls the target on one thread, so one set per thread.
    static KEYS: Keys = {
        let dir = scratch_dir("keys");
        let identity = write(&dir.join("identity.txt"), ARCHIVE_IDENTITY);
        let passphrase = write(&dir.join("passphrase.txt"), ARCHIVE_PASSPHRASE);
        Keys {
            identity: read_identities(&identity).unwrap_or_else(|e| panic!("identity: {e}")),
            passphrase: read_passphrase(&passphrase).unwrap_or_else(|e| panic!("passphrase: {e}")),
        }
    };
}

fn write(path: &Path, text: &str) -> std::path::PathBuf {
    std::fs::write(path, format!("{text}\n")).expect("write a key file");
    path.to_path_buf()
}

fn encrypt(plaintext: &[u8]) -> Vec<u8> {
    let recipient: age::x25519::Recipient = ARCHIVE_RECIPIENT.parse().expect("the fuzz recipient");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).expect("an encryptor");
    let mut out = encryptor.wrap_output(Vec::new()).expect("encrypt to memory");
    out.write_all(plaintext).expect("encrypt to memory");
    out.finish().expect("encrypt to memory")
}

fn gzip(plaintext: &[u8]) -> Vec<u8> {
    let mut writer = MemberWriter::new(Vec::new(), 1, 2).expect("a gzip writer");
    writer.write_all(plaintext).expect("compress to memory");
    writer.finish().expect("compress to memory")
}
