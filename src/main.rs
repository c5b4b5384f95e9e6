//! The `gm` binary: parse arguments, run, print the one error, exit with its code.

use std::process::ExitCode;

#[allow(clippy::print_stderr, clippy::print_stdout)]
fn main() -> ExitCode {
    let args = match gm::cli::parse_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(exit) if exit.is_error => {
            eprintln!("{}", exit.output);
            return ExitCode::from(exit.code);
        }
        Err(exit) => {
            println!("{}", exit.output);
            return ExitCode::from(exit.code);
        }
    };
    gm::cli::init_logging();
    match gm::cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
