//! STUB: the hasher thread.
