//! STUB: the peer thread.
