//! The `strand` command: parses the command line, runs a subcommand, draws the progress line.
//!
//! Runs on the program's main thread, which becomes the session's main loop during a download.
//! Every error ends here as one line on stderr and a non-zero exit status. One file per
//! subcommand; `args` parses what several of them share, `progress` draws the live line.

mod args;
mod create;
mod dht;
mod disk;
mod download;
mod errors;
mod help;
mod info;
mod live;
mod progress;
mod run;
mod seed;
mod summary;
mod tracker;
mod units;
mod verify;

use std::io::IsTerminal;
use std::process::ExitCode;

use errors::{note, say, usage_err, Failure, EXIT_USAGE};

/// Runs the command line of this process and returns its exit status.
pub(crate) fn main() -> ExitCode {
    // On a terminal each log line first erases the live line it would otherwise run into;
    // the live line is drawn again below it at its next redraw.
    let tty = std::io::stderr().is_terminal();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(move |buf, record| {
            use std::io::Write as _;
            if tty {
                write!(buf, "\r\x1b[2K")?;
            }
            writeln!(
                buf,
                "[{} {:<5} {}] {}",
                buf.timestamp_micros(),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
    match run(pico_args::Arguments::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                note!("strand: {}", f.message);
            }
            if f.status == EXIT_USAGE {
                note!("Try 'strand --help'.");
            }
            ExitCode::from(f.status)
        }
    }
}

fn run(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let help = args.contains(["-h", "--help"]);
    if args.contains(["-V", "--version"]) {
        say!("strand {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let cmd = args
        .subcommand()
        .map_err(|e| Failure::usage(e.to_string()))?;
    if help || cmd.as_deref() == Some("help") {
        let topic = match cmd.as_deref() {
            Some("help") => args.opt_free_from_str::<String>().map_err(usage_err)?,
            other => other.map(str::to_string),
        };
        let text = match topic {
            None => help::global(),
            Some(t) => {
                help::command(&t).ok_or_else(|| Failure::usage(format!("unknown command '{t}'")))?
            }
        };
        std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())
            .map_err(Failure::stdout)?;
        return Ok(());
    }
    match cmd.as_deref() {
        Some("download") => download::download(args),
        Some("seed") => seed::seed(args),
        Some("verify") => verify::verify(args),
        Some("create") => create::create(args),
        Some("info") => info::info(args),
        Some("tracker") => tracker::tracker(args),
        Some("dht") => dht::dht_command(args),
        Some(cmd) => Err(Failure::usage(format!("unknown command '{cmd}'"))),
        None => Err(Failure::usage("no command given")),
    }
}
