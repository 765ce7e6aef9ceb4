//! The one error type of the command line: a message shown as one line, and an exit status.
//!
//! Runs on the main thread. Every subcommand returns `Result<(), Failure>`; `main` prints it.

/// Exit status for an error.
pub(crate) const EXIT_ERROR: u8 = 1;
/// Exit status for a bad command line.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;
/// Exit status when stdout was closed under us (128 + SIGPIPE, as `ls | head` ends).
pub(crate) const EXIT_PIPE: u8 = 141;

/// A failure to report: one line (none when empty), and the exit status.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) status: u8,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: EXIT_USAGE,
        }
    }

    pub(crate) fn error(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: EXIT_ERROR,
        }
    }

    /// Writing to stdout failed: a closed pipe ends the command quietly, as `ls | head` does;
    /// any other error is one line.
    pub(crate) fn stdout(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure {
                message: String::new(),
                status: EXIT_PIPE,
            }
        } else {
            Failure::error(format!("cannot write to stdout: {e}"))
        }
    }

    pub(crate) fn interrupted() -> Failure {
        Failure {
            message: "stopped by Ctrl-C".into(),
            status: EXIT_INTERRUPTED,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::error(e.to_string())
    }
}

/// A command-line parse error, as a usage failure.
pub(crate) fn usage_err(e: pico_args::Error) -> Failure {
    Failure::usage(e.to_string())
}

/// Prints a line on stdout, returning [`Failure::stdout`] from the calling function when the
/// write fails (`println!` would panic on a closed pipe).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::cli::errors::Failure::stdout)?
    }};
}
pub(crate) use say;

/// Prints a line on stderr; a closed stderr is ignored (`eprintln!` would panic).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;
