//! STUB: the command line.
fn main() {}
