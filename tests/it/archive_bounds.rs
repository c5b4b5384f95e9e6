//! Reading a crafted archive is bounded (F12, F14): a small archive that expands hugely is refused
//! after a bounded write, a duplicate entry is a damaged backup (exit 1) naming the entry, and
//! neither leaves a temporary file behind or changes the live database.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::harness::{gm_bin, home_with_schema, identity, open_archive, ulimit_block_bytes, Gm, TempDir};

/// What every command says first when `--allow-unsigned` lets an unsigned archive through.
const UNSIGNED_WARNING: &str =
    "warning: --allow-unsigned: a backup without a signature is accepted, and its origin is not proven\n";

/// Encrypts `plain` (already a gzip stream) to `recipient` into `path`.
fn encrypt_to(path: &Path, recipient: &str, write_plain: impl FnOnce(&mut dyn Write)) {
    let recipient: age::x25519::Recipient = recipient.parse().unwrap();
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let mut out = encryptor.wrap_output(std::fs::File::create(path).unwrap()).unwrap();
    write_plain(&mut out);
    out.finish().unwrap().sync_all().unwrap();
}

/// One complete gzip member holding `bytes`.
fn gzip_member(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// An archive whose `na.db` entry declares and holds `gib` GiB of zeros, written as a tar header
/// member, the same 16 MiB-of-zeros member repeated, and the end-of-archive member: about 16 KiB
/// per 16 MiB, so the file stays small while its content is huge.
fn zero_bomb(path: &Path, recipient: &str, gib: u64) {
    let mut header = tar::Header::new_gnu();
    header.set_path("na.db").unwrap();
    header.set_size(gib << 30);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let zeros = gzip_member(&vec![0u8; 16 << 20]);
    encrypt_to(path, recipient, |out| {
        out.write_all(&gzip_member(header.as_bytes())).unwrap();
        for _ in 0..(gib * 64) {
            out.write_all(&zeros).unwrap();
        }
        out.write_all(&gzip_member(&[0u8; 1024])).unwrap();
    });
}

/// An ordinary tar.gz archive of `entries` (in order, duplicates allowed), encrypted to `recipient`.
fn archive_of(path: &Path, recipient: &str, entries: &[(&str, &[u8])]) {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    let gz = tar.into_inner().unwrap().finish().unwrap();
    encrypt_to(path, recipient, |out| out.write_all(&gz).unwrap());
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    v.sort();
    v
}

/// A home with its schema, a fresh identity in `dir` and a genuine backup encrypted to it at
/// `dir/good.tar.gz.age`: `(home, recipient, identity file, archive)`.
fn home_with_backup(dir: &TempDir) -> (PathBuf, String, PathBuf, PathBuf) {
    let home = home_with_schema(dir);
    let (recipient, key) = identity(dir);
    let archive = dir.join("good.tar.gz.age");
    let (h, a) = (home.to_str().unwrap(), archive.to_str().unwrap());
    Gm::new(&["managed", "backup", "--home", h, "--recipient", &recipient, "--output", a]).expect(0);
    (home, recipient, key, archive)
}

/// Runs `gm ARGS` with TMPDIR=`tmp` under a 160 MiB file-size limit (SIGXFSZ ignored, so a larger
/// write fails with EFBIG, which gm reports as a local I/O error, exit 2): proves the write stays bounded.
fn gm_with_file_limit(tmp: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let limit = (160u64 << 20) / ulimit_block_bytes();
    let o = Command::new("sh")
        .args(["-c", &format!("trap '' XFSZ; ulimit -f {limit}; exec \"$0\" \"$@\""), gm_bin()])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

// F12: a 1 MB archive made verify write 979 MiB to $TMPDIR.
#[test]
fn a_small_archive_that_expands_hugely_is_refused_after_a_bounded_write_and_leaves_no_temp_file() {
    let dir = TempDir::new("bomb");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let bomb = dir.join("bomb.tar.gz.age");
    zero_bomb(&bomb, &recipient, 1);
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 2 << 20, "the crafted archive is small: {size} bytes");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (b, k) = (bomb.to_str().unwrap(), key.to_str().unwrap());

    // Unsigned, the bomb is refused at the signature check, before a byte is decrypted (F4). The
    // bound below is what still guards the explicit `--allow-unsigned` path (legacy backups) and an
    // archive signed with a stolen backup-signing key.
    let (code, stdout, _) = gm_with_file_limit(&tmp, &["managed", "verify", b, "--identity", k, "--home", h]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("damaged or forged backup: "), "{stdout}");
    assert_eq!(names(&tmp), Vec::<String>::new(), "nothing unpacked");

    let (code, stdout, stderr) =
        gm_with_file_limit(&tmp, &["managed", "verify", b, "--identity", k, "--home", h, "--allow-unsigned"]);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with(&format!("FAILED: {b}\n")), "{stdout}");
    assert!(
        stdout.contains("damaged backup: entry na.db expands ")
            && stdout.contains("beyond the ratio 100:1 (backup.max_expansion_ratio in gm.toml)"),
        "{stdout}"
    );
    assert_eq!(names(&tmp), Vec::<String>::new(), "no temporary file left in TMPDIR");

    let db = home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    let (code, _, stderr) = gm_with_file_limit(
        &tmp,
        &["managed", "restore", "--home", h, "--backup", b, "--identity", k, "--yes", "--allow-unsigned"],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{UNSIGNED_WARNING}error: check decrypt failed: not a usable gm backup: damaged backup: "
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing restored");
    let left: Vec<String> = names(&home).into_iter().filter(|n| n.starts_with(".gm-") || n.contains(".tmp")).collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(names(&tmp), Vec::<String>::new());

    // The scheduled drill picks the newest file: the same bound holds there.
    let (code, stdout, stderr) = gm_with_file_limit(
        &tmp,
        &["managed", "restore-drill", "--home", h, "--backup", b, "--identity", k, "--json", "--allow-unsigned"],
    );
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("damaged backup: entry na.db expands "), "{stdout}");
    assert_eq!(names(&tmp), Vec::<String>::new());
}

#[test]
fn an_entry_declaring_more_than_backup_max_unpacked_bytes_is_refused_before_writing() {
    let dir = TempDir::new("max-unpacked");
    let (home, _, key, archive) = home_with_backup(&dir);
    let h = home.to_str().unwrap();
    let (a, k) = (archive.to_str().unwrap(), key.to_str().unwrap());
    Gm::new(&["managed", "verify", a, "--identity", k, "--home", h]).expect(0);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("\n[backup]\n"), "quickstart writes a [backup] table");
    std::fs::write(home.join("gm.toml"), toml.replace("\n[backup]\n", "\n[backup]\nmax_unpacked_bytes = 4096\n"))
        .unwrap();
    let (stdout, _) = Gm::new(&["managed", "verify", a, "--identity", k, "--home", h]).expect(1);
    assert!(
        stdout.contains("damaged backup: entry na.db declares ")
            && stdout.contains("beyond backup.max_unpacked_bytes (4096 bytes, "),
        "{stdout}"
    );
    std::fs::write(home.join("gm.toml"), "[backup]\nmax_expansion_ratio = 0\n").unwrap();
    let (_, stderr) = Gm::new(&["managed", "verify", a, "--identity", k, "--home", h]).expect(2);
    assert!(stderr.contains("invalid setting backup.max_expansion_ratio in ") && stderr.contains("must be at least 1"));
}

// F14: a duplicate entry reported "File exists" (exit 2, local I/O) instead of a damaged backup.
#[test]
fn a_duplicate_entry_is_a_damaged_backup_naming_the_entry_and_restores_nothing() {
    let dir = TempDir::new("duplicate");
    let (home, recipient, key, good) = home_with_backup(&dir);
    let h = home.to_str().unwrap();
    let id = std::fs::read_to_string(&key).unwrap().trim().parse::<age::x25519::Identity>().unwrap();
    let entries = open_archive(&good, &id);
    let db = home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    for twice in ["na.db", "manifest.json"] {
        let mut list: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        list.push((twice, entries[twice].as_slice()));
        let forged = dir.join(&format!("dup-{twice}.tar.gz.age"));
        archive_of(&forged, &recipient, &list);
        let (f, k) = (forged.to_str().unwrap(), key.to_str().unwrap());
        // Unsigned (the signature check would refuse it first): --allow-unsigned reaches the unpacking.
        let (stdout, _) =
            Gm::new(&["managed", "verify", f, "--identity", k, "--home", h, "--allow-unsigned"]).expect(1);
        assert!(stdout.contains(&format!("not a usable gm backup: duplicate entry \"{twice}\"")), "{stdout}");
        let (_, stderr) = Gm::restore_with(&home, &forged, &key, &["--allow-unsigned"]).expect(1);
        assert_eq!(
            stderr,
            format!(
                "{UNSIGNED_WARNING}error: check decrypt failed: not a usable gm backup: duplicate entry \"{twice}\"\n"
            ),
        );
        assert_eq!(std::fs::read(&db).unwrap(), before, "nothing restored");
    }
}
