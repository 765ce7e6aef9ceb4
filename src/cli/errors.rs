//! The one error type of the command line: a message shown as one line, and an exit status.
//!
//! Runs on the main thread. Every subcommand returns `Result<(), Failure>`; `main` prints it.

/// Exit status for an error.
pub(crate) const EXIT_ERROR: u8 = 1;
/// Exit status for a bad command line.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report: one line, and the exit status.
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
