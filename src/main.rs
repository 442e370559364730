//! The `imgraph` binary: parse the command line, run the library, map the result to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // A shell asking for completions (`COMPLETE=bash imgraph -- …`) is answered here, and the process ends.
    clap_complete::CompleteEnv::with_factory(imgraph::cli::Cli::command).complete();
    let cli = imgraph::cli::Cli::parse();
    match imgraph::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.exit_code();
            if code != imgraph::exit::SUCCESS {
                eprintln!("imgraph: error: {error}");
            }
            ExitCode::from(code)
        }
    }
}
