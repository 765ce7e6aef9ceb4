//! `strand tracker`: run the built-in HTTP and UDP tracker until Ctrl-C.
//!
//! Runs on the main thread, which waits while the tracker's own threads serve.

use std::net::{IpAddr, SocketAddr};

use strand::tracker_server::{self as server, ServerConfig};

use super::args::{finish, parsed, quiet, value};
use super::errors::{note, Failure};

pub(crate) fn tracker(mut args: pico_args::Arguments) -> Result<(), Failure> {
    let port = value(&mut args, "--port", "a port number, 0-65535", parsed::<u16>)?
        .unwrap_or(server::DEFAULT_PORT);
    let bind = value(&mut args, "--bind", "an IP address", parsed::<IpAddr>)?
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    // Taken as by every command; the one line below is the result, and stays.
    quiet(&mut args);
    finish(args)?;
    let addr = SocketAddr::new(bind, port);
    let tracker = server::start(ServerConfig::new(addr))
        .map_err(|e| Failure::error(format!("cannot start the tracker on {addr}: {e}")))?;
    note!(
        "strand tracker: announce URLs {} and {}",
        tracker.announce_url(),
        tracker.udp_announce_url()
    );
    tracker.wait();
    Ok(())
}
