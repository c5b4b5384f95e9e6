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
