//! Putting pieces on disk: the piece→file layout and the writer thread.

pub mod layout;
pub mod writer;
