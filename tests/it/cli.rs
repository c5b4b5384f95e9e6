//! The `gm` command line itself, as an operator meets it in the first hour on a host (issue 15):
//! `gm --version` names the commit, help piped into a reader that stops early does not panic, and
//! commands pointed at a home that does not exist say so instead of reporting an empty one.

use std::process::{Command, Stdio};

use crate::harness::{gm_bin, sandbox, Gm, TempDir};

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
    let (_, stderr) = Gm::new(&["keygen", "--version"]).expect(2);
    assert!(stderr.starts_with("error: Unrecognized argument: --version"), "{stderr}");
    assert!(Gm::new(&["--help"]).expect(0).0.contains("gm --version prints the version"));
}

/// Runs gm with stdout (and stderr) on a pipe whose reader is already gone, as `gm --help | head`
/// is once head has read its lines; returns the exit status and what was printed to stderr.
fn with_closed_stdout(args: &[&str], close_stderr: bool) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let stderr = if close_stderr { Stdio::from(writer.try_clone().unwrap()) } else { Stdio::piped() };
    let out = Command::new(gm_bin()).args(args).stdout(writer).stderr(stderr).stdin(Stdio::null()).output().unwrap();
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
    assert_eq!(with_closed_stdout(&["no-such-command"], true), (Some(2), String::new()));
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

/// Every leaf command, found by walking `gm --help` and each command's own help (so a new command
/// is covered without editing this test).
fn every_command() -> Vec<Vec<String>> {
    fn children(path: &[String]) -> Vec<String> {
        let args: Vec<&str> = path.iter().map(String::as_str).chain(["--help"]).collect();
        let (stdout, _) = Gm::new(&args).expect(0);
        let Some(section) = stdout.split("\nCommands:\n").nth(1) else { return Vec::new() };
        section
            .lines()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with(|c: char| c.is_alphabetic()))
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }
    let mut leaves = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let kids = children(&path);
        if kids.is_empty() && !path.is_empty() {
            leaves.push(path.clone());
        }
        for k in kids {
            let mut p = path.clone();
            p.push(k);
            todo.push(p);
        }
    }
    leaves
}

/// The exit-code contract for usage errors (README, "Exit codes"): a mistyped flag is "could not
/// run" for every command, 2, except `gm probe` (Nagios UNKNOWN, 3) and `gm readiness` (report not
/// produced, 3), so no typo reads as a pass or a warning. The message names the command's own help,
/// and under --json the error is one JSON object.
#[test]
fn a_mistyped_flag_exits_with_each_commands_could_not_run_code_and_names_its_help() {
    let commands = every_command();
    assert!(commands.len() >= 40, "found only {}: {commands:?}", commands.len());
    for path in &commands {
        let shown = path.join(" ");
        let want = match path[0].as_str() {
            "probe" | "readiness" => 3,
            _ => 2,
        };
        let args: Vec<&str> = path.iter().map(String::as_str).chain(["--no-such-flag"]).collect();
        let (_, stderr) = Gm::new(&args).expect(want);
        assert!(stderr.starts_with("error: "), "gm {shown}: {stderr}");
        assert!(stderr.contains(&format!("hint: run gm {shown} --help for its flags")), "gm {shown}: {stderr}");
        let json: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let (_, stderr) = Gm::new(&json).expect(want);
        assert!(
            stderr.starts_with("{\"error\":") && stderr.contains(&format!("\"exit_code\":{want}")),
            "gm {shown} --json: {stderr}"
        );
    }
}

#[test]
fn under_json_a_failing_command_reports_its_error_as_json() {
    let dir = TempDir::new("json-error");
    let missing = dir.join("missing");
    let (stdout, stderr) = Gm::new(&["operator", "list", "--home", missing.to_str().unwrap(), "--json"]).expect(2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("{\"error\":\"gm home ") && stderr.contains("\"exit_code\":2,\"hint\":\"pass --home"),
        "{stderr}"
    );
}

/// The renames of docs/cli.md keep the old spellings working for one release, with a warning that
/// names the new one; the new spelling prints no warning.
#[test]
fn old_flag_spellings_still_work_with_a_warning_naming_the_new_one() {
    let dir = TempDir::new("renamed-flags");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let bob = dir.join("bob");
    Gm::new(&["keygen", "operator", "--output", bob.to_str().unwrap()]).expect(0);
    let b64 = std::fs::read_to_string(dir.join("bob.pub")).unwrap().lines().last().unwrap().trim().to_string();
    let (_, stderr) =
        Gm::new(&["operator", "add", "--home", h, "--key-id", "bob", "--public-key-b64", &b64, "--force"]).expect(0);
    assert!(stderr.contains("warning: --public-key-b64 is now --public-key"), "{stderr}");
    let (_, stderr) = Gm::new(&["operator", "retire", "--home", h, "--key-id", "bob"]).expect(0);
    assert!(!stderr.contains("warning"), "{stderr}");
    let (_, stderr) = Gm::new(&["operator", "add", "--home", h, "--key-id", "bob", "--public-key", &b64]).expect(0);
    assert!(!stderr.contains("is now"), "{stderr}");
    // A renamed flag of another command is not touched: `--target` is only gm probe's and readiness's.
    let (_, stderr) = Gm::new(&["operator", "list", "--home", h, "--target", "x"]).expect(2);
    assert!(stderr.contains("Unrecognized argument: --target") && !stderr.contains("is now"), "{stderr}");
}
