//! STUB: the main loop.
