//! STUB: the writer thread.
