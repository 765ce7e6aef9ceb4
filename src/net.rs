//! Small socket vocabulary shared by every thread that owns a socket (peer threads, the
//! metadata phase, tracker clients, the built-in tracker).
//!
//! Plain functions; no thread of its own, owns nothing.

use std::io;

/// Whether `e` is a socket timeout expiring: a read or write timeout armed on a socket
/// reports `WouldBlock` on Unix and `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_told_from_failures() {
        assert!(is_timeout(&io::ErrorKind::WouldBlock.into()));
        assert!(is_timeout(&io::ErrorKind::TimedOut.into()));
        assert!(!is_timeout(&io::ErrorKind::ConnectionReset.into()));
        assert!(!is_timeout(&io::ErrorKind::UnexpectedEof.into()));
    }
}
