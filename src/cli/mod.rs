//! The `strand` command: parses the command line, runs a subcommand, draws the progress line.
//!
//! Runs on the program's main thread, which becomes the session's main loop during a download.
//! Every error ends here as one line on stderr and a non-zero exit status. One file per
//! subcommand; `args` parses what several of them share, `progress` draws the live line.

mod args;
mod create;
mod dht;
mod download;
mod errors;
mod help;
mod info;
mod progress;
mod run;
mod seed;
mod tracker;
mod units;
mod verify;

use std::process::ExitCode;

use errors::{Failure, EXIT_USAGE};

/// Runs the command line of this process and returns its exit status.
pub(crate) fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    match run(pico_args::Arguments::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("strand: {}", f.message);
            if f.status == EXIT_USAGE {
                eprintln!("Try 'strand --help'.");
            }
            ExitCode::from(f.status)
        }
    }
}

fn run(mut args: pico_args::Arguments) -> Result<(), Failure> {
    if args.contains(["-h", "--help"]) {
        print!("{}", help::global());
        return Ok(());
    }
    if args.contains(["-V", "--version"]) {
        println!("strand {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    match args
        .subcommand()
        .map_err(|e| Failure::usage(e.to_string()))?
    {
        Some(cmd) if cmd == "download" => download::download(args),
        Some(cmd) if cmd == "seed" => seed::seed(args),
        Some(cmd) if cmd == "verify" => verify::verify(args),
        Some(cmd) if cmd == "create" => create::create(args),
        Some(cmd) if cmd == "info" => info::info(args),
        Some(cmd) if cmd == "tracker" => tracker::tracker(args),
        Some(cmd) if cmd == "dht" => dht::dht_command(args),
        Some(cmd) => Err(Failure::usage(format!("unknown command '{cmd}'"))),
        None => Err(Failure::usage("no command given")),
    }
}
