//! The `gm` binary: hands argv to `gm::cli::main` (parse, run, print the one error) and exits with
//! its status. All printing goes through `gm::cli::output`, which never panics on a closed pipe
//! (`gm --help | head`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(gm::cli::main(std::env::args_os().collect()))
}
