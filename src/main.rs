//! The `gm` binary: parse arguments, run, print the one error, exit with its code. All printing goes
//! through `gm::cli::output`, which never panics on a closed pipe (`gm --help | head`).

use std::process::ExitCode;

use gm::cli::output::{line, notice};

fn main() -> ExitCode {
    let args = match gm::cli::parse_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(exit) if exit.is_error => {
            notice(&exit.output);
            return ExitCode::from(exit.code);
        }
        Err(exit) => {
            line(&exit.output);
            return ExitCode::from(exit.code);
        }
    };
    gm::cli::init_logging();
    match gm::cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            notice(&format!("error: {err}"));
            if let Some(hint) = err.hint() {
                notice(&format!("hint: {hint}"));
            }
            ExitCode::from(err.exit_code())
        }
    }
}
