//! Embeds two facts about the build:
//!
//! * `GM_BUILD_EPOCH` (Unix seconds), for the clock sanity warnings of `gm serve` and `gm readiness`
//!   (issue 8 item 5): a system clock earlier than the build is certainly wrong. Reproducible builds
//!   set `SOURCE_DATE_EPOCH` (reproducible-builds.org) and get exactly that value; otherwise the
//!   build machine's clock is used, which is still a valid lower bound when a later build reuses it.
//! * `GM_BUILD_COMMIT`, the commit `gm --version` names (issue 15 item 3): `GM_BUILD_COMMIT` from the
//!   environment when set (up to 64 printable ASCII characters: a package build from a tarball
//!   knows its commit or tag), else the 12-digit hash of HEAD when this package is the top of a git
//!   checkout, else `unknown`. A tarball without `.git` (or a machine without git) builds all the
//!   same. Uncommitted changes are not detected: the hash says which commit the tree started from.
//!
//! The script reruns when either variable, HEAD or the branch HEAD names changes.
//!
//! For the static x86_64 musl build (the binary install.sh ships) it also compiles
//! `src/musl/string.c`, a memcpy/memmove/memcmp that replaces musl's: musl's `rep movsq` start-up
//! cost made small copies ~27% of the CPU of serving `/crl`, and its byte-at-a-time memcmp 15% of
//! `gm managed verify` (the file says why and how it is linked); and `src/musl/sqlite_mem.c`,
//! SQLite's allocator there: a bounded cache of freed blocks in front of musl's malloc, which gave
//! every freed group straight back to the kernel (TLB shootdowns halved the join rate); and
//! `src/musl/sqlite_pcache.c`, SQLite's page cache behind a wrapper that skips a commit's
//! truncation when no page is past the end (SQLite walked the writer's whole cache after each
//! page split).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=GM_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    println!("cargo:rustc-env=GM_BUILD_EPOCH={epoch}");
    let commit = std::env::var("GM_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_graphic()))
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=GM_BUILD_COMMIT={commit}");
    musl_string();
}

/// Links `src/musl/string.c` into x86_64 musl builds, as a whole archive: its `memcpy`, `memmove` and
/// `memcmp` then come before musl's libc.a, so musl's are never pulled in, and if they ever were the link
/// would fail on the duplicate definition rather than quietly use them.
fn musl_string() {
    println!("cargo:rerun-if-changed=src/musl/string.c");
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if target_env != "musl" || target_arch != "x86_64" {
        return;
    }
    cc::Build::new()
        .file("src/musl/string.c")
        .opt_level(2)
        // The compiler must not turn the copy loops back into calls to memcpy.
        .flag("-fno-builtin")
        .flag("-ffreestanding")
        .flag_if_supported("-fno-tree-loop-distribute-patterns")
        .cargo_metadata(false)
        .compile("gm_string");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    println!("cargo:rustc-link-search=native={out_dir}");
    println!("cargo:rustc-link-lib=static:+whole-archive=gm_string");
    // SQLite's allocator (the file says why). Whole archive: nothing refers to it by name, its
    // constructor installs it before main.
    println!("cargo:rerun-if-changed=src/musl/sqlite_mem.c");
    cc::Build::new().file("src/musl/sqlite_mem.c").opt_level(2).cargo_metadata(false).compile("gm_sqlite_mem");
    println!("cargo:rustc-link-lib=static:+whole-archive=gm_sqlite_mem");
    // SQLite's page cache behind a wrapper that skips truncations with nothing to drop (the file
    // says why). Whole archive for the same reason.
    println!("cargo:rerun-if-changed=src/musl/sqlite_pcache.c");
    cc::Build::new().file("src/musl/sqlite_pcache.c").opt_level(2).cargo_metadata(false).compile("gm_sqlite_pcache");
    println!("cargo:rustc-link-lib=static:+whole-archive=gm_sqlite_pcache");
}

/// The short hash of HEAD when the package folder is the top of a git work tree (not merely inside
/// some other repository, as an unpacked tarball may be), and the files to watch for a new commit.
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    // HEAD lives in the work tree's git dir (a linked worktree has its own); branches and
    // packed-refs in the common one.
    let git_dir = git(&manifest_dir, &["rev-parse", "--absolute-git-dir"])?;
    let common_dir = git(&manifest_dir, &["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    // Only files that exist: cargo reruns the script on every build for a missing one.
    let mut watch = vec![format!("{git_dir}/HEAD"), format!("{common_dir}/packed-refs")];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(format!("{common_dir}/{branch}"));
    }
    for file in watch.iter().filter(|f| Path::new(f).is_file()) {
        println!("cargo:rerun-if-changed={file}");
    }
    git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])
}

/// One line of git's output, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}
