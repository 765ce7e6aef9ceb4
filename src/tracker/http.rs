//! STUB (helper fills in): HTTP tracker client.
