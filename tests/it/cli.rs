//! The `gm` command line itself, as an operator meets it in the first hour on a host (issue 15):
//! `gm --version` names the commit, help piped into a reader that stops early does not panic, and
//! commands pointed at a home that does not exist say so instead of reporting an empty one.

use std::process::{Command, Stdio};

use crate::harness::{sandbox, Gm, TempDir, GM};

/// `git rev-parse --short=12 HEAD` of this checkout, when it is one and git is here.
fn head_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let top = Command::new("git").args(["-C", dir, "rev-parse", "--show-toplevel"]).output().ok()?;
    let top = String::from_utf8(top.stdout).ok()?;
    if std::fs::canonicalize(top.trim()).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let out = Command::new("git").args(["-C", dir, "rev-parse", "--short=12", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let (stdout, stderr) = Gm::new(&["--version"]).expect(0);
    assert_eq!(stderr, "");
    let commit = head_commit().unwrap_or_else(|| "unknown".to_string());
    assert_eq!(stdout, format!("gm {} (commit {commit})\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(Gm::new(&["-V"]).expect(0).0, stdout);
    // Only alone: after a command it is that command's (unknown) flag, as before.
    let (_, stderr) = Gm::new(&["keygen", "--version"]).expect(1);
    assert!(stderr.starts_with("Unrecognized argument: --version"), "{stderr}");
    assert!(Gm::new(&["--help"]).expect(0).0.contains("gm --version prints the version"));
}

/// Runs gm with stdout (and stderr) on a pipe whose reader is already gone, as `gm --help | head`
/// is once head has read its lines; returns the exit status and what was printed to stderr.
fn with_closed_stdout(args: &[&str], close_stderr: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let stderr = if close_stderr { Stdio::from(writer.try_clone().unwrap()) } else { Stdio::piped() };
    let out = Command::new(GM).args(args).stdout(writer).stderr(stderr).stdin(Stdio::null()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

// Issue 15 item 2: println! panicked ("failed printing to stdout: Broken pipe", exit 101).
#[test]
fn help_and_errors_into_a_closed_pipe_exit_with_their_own_status_without_a_panic() {
    for args in [&["--help"][..], &["managed", "--help"], &["keygen", "--help"], &["--version"]] {
        assert_eq!(with_closed_stdout(args, false), (Some(0), String::new()), "gm {args:?}");
    }
    // A command's result line, and errors with stderr closed too.
    let dir = TempDir::new("closed-pipe");
    let home = sandbox(&dir);
    assert_eq!(
        with_closed_stdout(&["operator", "list", "--home", home.to_str().unwrap()], false),
        (Some(0), String::new())
    );
    assert_eq!(with_closed_stdout(&["no-such-command"], true), (Some(1), String::new()));
    assert_eq!(
        with_closed_stdout(&["operator", "list", "--home", "/nonexistent/gm-home"], true),
        (Some(2), String::new())
    );
}

// Issue 15 item 4: a missing home read as an empty one (0 keys, no jobs, exit 0).
#[test]
fn commands_given_a_home_that_does_not_exist_say_so() {
    let dir = TempDir::new("missing-home");
    let missing = dir.join("no-such-home");
    let m = missing.to_str().unwrap();
    let hint = format!(
        "hint: pass --home (or set GM_HOME) to an existing home; create a sandbox with `gm quickstart --home {m}`, \
         or install an NA with scripts/install.sh (home /etc/gm)\n"
    );
    for args in [
        &["operator", "list", "--home", m][..],
        &["operator", "retire", "--home", m, "--key-id", "alice"],
        &["cron", "list", "--home", m],
        &["cron", "run-once", "backup", "--home", m],
        &["cron", "run", "--home", m],
    ] {
        let (stdout, stderr) = Gm::new(args).expect(2);
        assert_eq!(stdout, "", "gm {args:?}");
        assert_eq!(stderr, format!("error: gm home {m} (--home) does not exist\n{hint}"), "gm {args:?}");
    }
    let (_, stderr) = Gm::new(&["cron", "list"]).env("GM_HOME", m).expect(2);
    assert_eq!(stderr, format!("error: gm home {m} ($GM_HOME) does not exist\n{hint}"));
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let (_, stderr) = Gm::new(&["operator", "list", "--home", file.to_str().unwrap()]).expect(2);
    assert!(stderr.starts_with(&format!("error: gm home {} (--home) is not a folder\n", file.display())), "{stderr}");

    // An existing home that is merely empty still reads as empty.
    let empty = dir.join("empty-home");
    std::fs::create_dir(&empty).unwrap();
    let (stdout, _) = Gm::new(&["operator", "list", "--home", empty.to_str().unwrap()]).expect(0);
    assert!(stdout.starts_with("0 operator key(s)"), "{stdout}");
    let (stdout, _) = Gm::new(&["cron", "list", "--home", empty.to_str().unwrap()]).expect(0);
    assert!(stdout.starts_with("no jobs"), "{stdout}");
}
