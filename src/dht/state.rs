//! What the DHT keeps between runs: our node id and the good nodes, in one small bencoded
//! file in the user's state folder (`$XDG_STATE_HOME/strand/dht.dat`, falling back to
//! `~/.local/state/strand/dht.dat`).
//!
//! File I/O on the DHT thread: read once at start, written (atomically: temporary file,
//! fsync, rename) when the thread stops.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bencode::{self, Value};
use crate::dht::id::{NodeId, NodeInfo};
use crate::dht::krpc;

/// Largest state file read.
const MAX_STATE_FILE: u64 = 64 * 1024;
/// Nodes saved at most.
pub(crate) const MAX_SAVED_NODES: usize = 200;

/// The state file's name inside the state folder.
pub const STATE_FILE: &str = "dht.dat";

/// The folder strand keeps its state in: `$XDG_STATE_HOME/strand`, else
/// `$HOME/.local/state/strand`; `None` when neither variable is set.
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("strand"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".local/state/strand"))
}

/// Our id and nodes from the last run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Our node id.
    pub id: NodeId,
    /// Nodes that were good when we stopped.
    pub nodes: Vec<NodeInfo>,
}

/// Reads the state file; `None` if it is missing or unreadable (a new id is made then).
pub fn load(path: &Path) -> Option<Saved> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_STATE_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Option<Saved> {
    let value = bencode::decode(bytes).ok()?;
    let id = NodeId(value.get(b"id")?.as_bytes()?.try_into().ok()?);
    let mut nodes = Vec::new();
    if let Some(n) = value.get(b"nodes").and_then(Value::as_bytes) {
        nodes.extend(krpc::decode_nodes(n, 4).unwrap_or_default());
    }
    if let Some(n) = value.get(b"nodes6").and_then(Value::as_bytes) {
        nodes.extend(krpc::decode_nodes(n, 16).unwrap_or_default());
    }
    nodes.truncate(MAX_SAVED_NODES);
    Some(Saved { id, nodes })
}

fn render(saved: &Saved) -> Vec<u8> {
    let nodes = &saved.nodes[..saved.nodes.len().min(MAX_SAVED_NODES)];
    let v4 = krpc::encode_nodes(nodes, 4);
    let v6 = krpc::encode_nodes(nodes, 16);
    Value::Dict(vec![
        (b"id", Value::Bytes(&saved.id.0)),
        (b"nodes", Value::Bytes(&v4)),
        (b"nodes6", Value::Bytes(&v6)),
    ])
    .encode()
}

/// Writes the state file atomically, creating its folder.
pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&render(saved))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_id_and_nodes() {
        let dir = std::env::temp_dir().join(format!("strand-dht-state-{}", std::process::id()));
        let path = dir.join("sub").join(STATE_FILE);
        let saved = Saved {
            id: NodeId([7; 20]),
            nodes: vec![
                NodeInfo {
                    id: NodeId([1; 20]),
                    addr: "127.0.0.3:4000".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId([2; 20]),
                    addr: "[::1]:4001".parse().unwrap(),
                },
            ],
        };
        save(&path, &saved).unwrap();
        assert_eq!(load(&path), Some(saved));
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(load(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
