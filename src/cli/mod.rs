//! The command line: the top-level argh definitions and the single dispatch match. One file per
//! command group; each turns its argh struct into typed options once, validates them before touching
//! any file, then acts.

pub mod admin;
pub mod audit;
pub mod backup;
pub mod cron;
pub mod error;
pub mod feed;
pub mod genesis;
pub mod incident;
pub mod input;
pub mod join;
pub mod keygen;
pub mod managed;
pub mod na_options;
pub mod operator;
pub mod ops_metrics;
pub mod output;
pub mod progress;
pub mod prune;
pub mod quickstart;
pub mod serve;
pub mod sign;
pub mod treaty;

use argh::FromArgs;

pub use error::Error;

/// gm: a Genesis Mesh managed sovereign in one binary (drop-in Network Authority server and ops toolkit).
#[derive(FromArgs, Debug)]
pub struct Args {
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
}

/// Runs the parsed command; `Ok` carries the exit status (0, or 1 when a check said no without error).
pub fn run(args: Args) -> Result<u8, Error> {
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
        Command::Cron(a) => cron::run(a),
        Command::Admin(a) => admin::run(a),
        Command::Join(a) => join::run(a),
        Command::Treaty(a) => treaty::run(a),
        Command::Feed(a) => feed::run(a),
    }
}

/// Installs the log backend from `GENESIS_LOG_LEVEL` and `GENESIS_LOG_FORMAT`.
pub fn init_logging() {
    let env = crate::config::Env::from_process();
    crate::logging::init(
        crate::logging::parse_level(env.get("GENESIS_LOG_LEVEL")),
        crate::logging::LogFormat::parse(env.get("GENESIS_LOG_FORMAT")),
    );
}
