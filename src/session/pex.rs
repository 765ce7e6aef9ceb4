//! Peer exchange (BEP 11), the sending side.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Session;
use crate::messages::Command;
use crate::peer::extension::{self, Pex};

/// How long after a peer's extension handshake we send it our first peer exchange message.
pub(super) const PEX_FIRST: Duration = Duration::from_secs(1);
/// Time between two peer exchange messages to the same peer (BEP 11: at most one a minute).
pub(super) const PEX_INTERVAL: Duration = Duration::from_secs(60);

impl Session {
    /// Peer exchange (BEP 11): tells each peer that speaks it, at most once a minute, which
    /// dialable peers we are connected to now that we have not told it of (flagging those
    /// that speak MSE), and which of those we told it of are gone. Never for private torrents.
    pub(super) fn send_pex(&mut self) {
        if self.meta.private {
            return;
        }
        let now = Instant::now();
        let current: HashMap<SocketAddr, bool> = self
            .peers
            .values()
            .filter(|p| p.connected)
            .filter_map(|p| Some((p.dial_addr()?, p.speaks_mse)))
            .collect();
        for peer in self.peers.values_mut() {
            let (Some(id), Some(due)) = (peer.ut_pex, peer.pex_due) else {
                continue;
            };
            if due > now {
                continue;
            }
            peer.pex_due = Some(now + PEX_INTERVAL);
            let own = peer.dial_addr();
            let added: Vec<SocketAddr> = current
                .keys()
                .filter(|a| Some(**a) != own && !peer.pex_sent.contains(a))
                .take(extension::MAX_PEX_PEERS)
                .copied()
                .collect();
            let encrypted = added.iter().filter(|a| current[a]).copied().collect();
            let dropped: Vec<SocketAddr> = peer
                .pex_sent
                .iter()
                .filter(|a| !current.contains_key(a))
                .take(extension::MAX_PEX_PEERS)
                .copied()
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            peer.pex_sent.extend(added.iter().copied());
            for d in &dropped {
                peer.pex_sent.remove(d);
            }
            let payload = extension::encode_pex(&Pex {
                added,
                encrypted,
                dropped,
            });
            let _ = peer.commands.send(Command::Extended { id, payload });
        }
    }
}
