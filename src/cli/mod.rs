//! The command line: the top-level argh definitions and the single dispatch match. One file per
//! command group; each turns its argh struct into typed options once, validates them before touching
//! any file, then acts.

pub mod admin;
pub mod audit;
pub mod audit_prune;
pub mod backup;
pub mod backup_signing;
pub mod client_hint;
pub mod config_check;
pub mod cron;
pub(crate) mod custody;
pub(crate) mod destinations;
pub mod drill;
pub mod error;
pub mod feed;
pub(crate) mod flags;
pub mod genesis;
pub mod history;
pub(crate) mod home;
pub mod incident;
pub mod input;
pub mod join;
pub mod keygen;
pub mod managed;
pub mod na_options;
pub(crate) mod offline_signing;
pub mod operator;
pub mod ops_metrics;
pub mod output;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod prune;
pub mod quickstart;
pub mod readiness;
pub mod restore;
pub mod serve;
pub(crate) mod serve_tls;
pub mod sign;
pub(crate) mod signer;
pub mod treaty;
pub mod verify_backup;

use std::ffi::OsString;

use argh::FromArgs;

pub use error::Error;

/// Why parsing the command line produced no [`Args`]: `--help` output (exit 0) or a parse error.
#[derive(Debug)]
pub(crate) struct ParseExit {
    /// The text to print.
    pub output: String,
    /// True for a parse error (printed to stderr), false for help (stdout).
    pub is_error: bool,
    /// The exit status.
    pub code: u8,
}

/// What `gm --version` prints: the package version and the commit it was built from (`build.rs`).
pub(crate) const VERSION_LINE: &str =
    concat!("gm ", env!("CARGO_PKG_VERSION"), " (commit ", env!("GM_BUILD_COMMIT"), ")");

/// Parses `argv` (program name first) as argh's `from_env` does, except that:
/// * a parse error exits with the command's "could not run" code: 2 (the contract of every command),
///   3 for `gm probe` (Nagios UNKNOWN, so a mistyped flag in a monitoring config is not a WARNING)
///   and for `gm readiness` (its "report not produced", so a gate that tolerates warnings, exit 1,
///   cannot pass on a typo);
/// * the message points at the help of the subcommand that was typed (`gm admin invite --help`);
/// * under `--json` the error is one JSON object, as every other error is;
/// * `gm --version` (or `-V`) alone prints [`VERSION_LINE`] (argh has no version flag of its own).
pub(crate) fn parse_args(argv: Vec<OsString>) -> Result<Args, ParseExit> {
    let mut strings = Vec::with_capacity(argv.len());
    for arg in argv {
        let arg = arg.into_string().map_err(|bad| ParseExit {
            output: format!("invalid UTF-8 in argument: {}", bad.to_string_lossy()),
            is_error: true,
            code: error::EXIT_CANNOT_RUN,
        })?;
        strings.push(arg);
    }
    let program = strings.first().map(std::path::Path::new).and_then(|p| p.file_name()).and_then(|n| n.to_str());
    let program = program.unwrap_or("gm").to_string();
    let renamed = rename_old_flags(&mut strings);
    for (old, new) in renamed {
        output::notice(&format!(
            "warning: {old} is now {new}; the old spelling goes in the next release (CHANGELOG.md)"
        ));
    }
    let rest: Vec<&str> = strings.iter().skip(1).map(String::as_str).collect();
    if matches!(rest[..], ["--version" | "-V"]) {
        return Err(ParseExit { output: VERSION_LINE.to_string(), is_error: false, code: 0 });
    }
    Args::from_args(&[&program], &rest).map_err(|exit| match exit.status {
        Ok(()) => ParseExit { output: exit.output, is_error: false, code: 0 },
        Err(()) => {
            let command = typed_command(&program, &rest);
            let code = match rest.first() {
                Some(&"probe") => error::EXIT_PROBE_UNKNOWN,
                Some(&"readiness") => error::EXIT_READINESS_NOT_PRODUCED,
                _ => error::EXIT_CANNOT_RUN,
            };
            let hint = format!("run {command} --help for its flags");
            let output = if rest.contains(&"--json") {
                output::error_json(exit.output.trim_end(), Some(&hint), code)
            } else {
                format!("error: {}\nhint: {hint}", exit.output.trim_end())
            };
            ParseExit { output, is_error: true, code }
        }
    })
}

/// Flags renamed to the one vocabulary of docs/cli.md: (command, old spelling, new spelling). The
/// old spelling keeps working for one release, with a warning (argh has no aliases, so argv is
/// rewritten before parsing).
pub const RENAMED_FLAGS: &[(&str, &str, &str)] = &[
    ("genesis create", "--root-key", "--root-public-key"),
    ("genesis create", "--na-key", "--na-public-key"),
    ("genesis sign", "--root-private-key", "--root-key"),
    ("managed audit-export", "--sign-key", "--signing-key"),
    ("managed audit-export", "--sign-key-id", "--signing-key-id"),
    ("managed backup", "--output-dir", "--dir"),
    ("managed audit-prune", "--export-dir", "--dir"),
    ("operator add", "--public-key-b64", "--public-key"),
    ("treaty issue", "--subject-key", "--subject-public-key"),
    ("treaty issue", "--subject-key-file", "--subject-public-key"),
    ("treaty replace", "--subject-key", "--subject-public-key"),
    ("treaty replace", "--subject-key-file", "--subject-public-key"),
    ("feed import", "--issuer-key", "--issuer-public-key"),
    ("feed import", "--issuer-key-file", "--issuer-public-key"),
    ("probe", "--target", "--na"),
    ("incident bundle", "--na-url", "--na"),
    ("readiness", "--target", "--na"),
];

/// Rewrites the old spellings of [`RENAMED_FLAGS`] in `argv` (program name first) to the new ones,
/// and returns what it rewrote. A word equal to an old flag of the command typed is that flag (no
/// flag value in gm is spelled like a gm flag).
fn rename_old_flags(argv: &mut [String]) -> Vec<(String, String)> {
    let words: Vec<String> = argv.iter().skip(1).take_while(|w| !w.starts_with('-')).cloned().collect();
    let command = words.join(" ");
    let mut renamed = Vec::new();
    for arg in argv.iter_mut().skip(1 + words.len()) {
        if let Some((_, old, new)) = RENAMED_FLAGS.iter().find(|(c, old, _)| command == *c && arg == old) {
            renamed.push((old.to_string(), new.to_string()));
            *arg = new.to_string();
        }
    }
    renamed
}

/// The longest run of leading words of `rest` that names a command (`gm admin invite`), for the
/// "run … --help" line: argh answers `--help` after a valid command path.
fn typed_command(program: &str, rest: &[&str]) -> String {
    let words: Vec<&str> = rest.iter().take_while(|w| !w.starts_with('-')).copied().collect();
    (0..=words.len())
        .rev()
        .map(|n| &words[..n])
        .find(|path| {
            let with_help: Vec<&str> = path.iter().copied().chain(["--help"]).collect();
            matches!(Args::from_args(&[program], &with_help), Err(e) if e.status.is_ok())
        })
        .map_or_else(|| program.to_string(), |path| [program].iter().chain(path).copied().collect::<Vec<_>>().join(" "))
}

/// The whole `gm` process after argv: parse, run, print the one error (JSON under `--json`),
/// and the exit status. `main.rs` only calls this.
pub fn main(argv: Vec<OsString>) -> u8 {
    let json = argv.iter().any(|a| a == "--json");
    let args = match parse_args(argv) {
        Ok(args) => args,
        Err(exit) if exit.is_error => {
            output::notice(&exit.output);
            return exit.code;
        }
        Err(exit) => {
            output::line(&exit.output);
            return exit.code;
        }
    };
    init_logging();
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            let hint = err.hint();
            if json {
                output::notice(&output::error_json(&format!("{err}"), hint.as_deref(), err.exit_code()));
            } else {
                output::notice(&format!("error: {err}"));
                if let Some(hint) = hint {
                    output::notice(&format!("hint: {hint}"));
                }
            }
            err.exit_code()
        }
    }
}

/// gm: a Genesis Mesh managed sovereign in one binary (drop-in Network Authority server and ops toolkit).
#[derive(FromArgs, Debug)]
#[argh(note = "gm --version prints the version and the commit gm was built from.")]
pub(crate) struct Args {
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Keygen(keygen::KeygenArgs),
    Sign(sign::SignArgs),
    Verify(sign::VerifyArgs),
    Genesis(genesis::GenesisArgs),
    Serve(serve::ServeArgs),
    Quickstart(quickstart::QuickstartArgs),
    Operator(operator::OperatorArgs),
    Managed(managed::ManagedArgs),
    Incident(incident::IncidentArgs),
    Cron(cron::CronArgs),
    Admin(admin::AdminArgs),
    Join(join::JoinArgs),
    Treaty(treaty::TreatyArgs),
    Feed(feed::FeedArgs),
    Probe(probe::ProbeArgs),
    Profile(profile::ProfileArgs),
    Readiness(readiness::ReadinessArgs),
    Config(config_check::ConfigArgs),
    Custody(custody::CustodyArgs),
    Signer(signer::SignerArgs),
}

/// Runs the parsed command; `Ok` carries the exit status (0, or 1 when a check said no without error).
pub(crate) fn run(args: Args) -> Result<u8, Error> {
    match args.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Sign(a) => sign::run_sign(a),
        Command::Verify(a) => sign::run_verify(a),
        Command::Genesis(a) => genesis::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Quickstart(a) => quickstart::run(a),
        Command::Operator(a) => operator::run(a),
        Command::Managed(a) => managed::run(a),
        Command::Incident(a) => incident::run(a),
        Command::Cron(a) => cron::run(a, &run_argv),
        Command::Admin(a) => admin::run(a),
        Command::Join(a) => join::run(a),
        Command::Treaty(a) => treaty::run(a),
        Command::Feed(a) => feed::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Readiness(a) => readiness::run(a),
        Command::Config(a) => config_check::run(a),
        Command::Custody(a) => custody::run(a),
        Command::Signer(a) => signer::run(a),
    }
}

/// Parses and runs one `gm` command line in this process (`gm cron exec`, a job's command).
fn run_argv(argv: &[&str]) -> Result<Result<u8, Error>, String> {
    let parsed = <Args as FromArgs>::from_args(&["gm"], argv).map_err(|e| e.output)?;
    Ok(run(parsed))
}

/// Installs the log backend from `GENESIS_LOG_LEVEL` and `GENESIS_LOG_FORMAT`.
pub(crate) fn init_logging() {
    let env = crate::config::Env::from_process();
    crate::logging::init(
        crate::logging::parse_level(env.get("GENESIS_LOG_LEVEL")),
        crate::logging::LogFormat::parse(env.get("GENESIS_LOG_FORMAT")),
    );
}
