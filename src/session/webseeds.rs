//! Starting web seeds (BEP 19): each gets a peer record under its [`webseed::identity`] and
//! a thread that speaks the peer protocol's commands and events over HTTP, so the rest of the
//! session treats it as a peer that has every piece.

use log::warn;

use super::Session;
use crate::webseed::{self, WebSeedSetup};

impl Session {
    /// Starts one thread per HTTP(S) web seed of the torrent, unless we have every wanted
    /// piece already.
    pub(super) fn start_web_seeds(&mut self) {
        if self.completed_at.is_some() {
            return;
        }
        let urls = self.meta.web_seeds.clone();
        for (n, url) in urls.into_iter().enumerate() {
            let Ok(n) = u16::try_from(n) else {
                break;
            };
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                warn!("web seed {url}: only http and https are supported; not used");
                continue;
            }
            let (key, commands) = self.add_peer(webseed::identity(n), true);
            let setup = WebSeedSetup {
                key,
                url: url.clone(),
                geometry: self.geometry,
                files: self.meta.files.clone(),
                multi_file: self.meta.multi_file,
                events: self.events_tx.clone(),
            };
            if let Err(e) = webseed::spawn(setup, commands) {
                warn!("web seed {url}: cannot start a thread: {e}");
                self.peers.remove(&key);
            }
        }
    }

    /// Web seeds in use now.
    pub(super) fn web_seeds_connected(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.connected && webseed::is_identity(p.addr))
            .count()
    }
}
