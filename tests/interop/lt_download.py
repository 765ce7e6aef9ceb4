"""Download one torrent with python3-libtorrent, on loopback only; exit 0 when complete.

argv: SOURCE OUT_DIR LISTEN_IP LISTEN_PORT TIMEOUT_S [PEER_IP:PEER_PORT]
SOURCE is a .torrent file or a magnet link.
- A .torrent: the session is created with no plugins (`lt.session(settings, 0)`), so
  libtorrent speaks only the plain protocol plus BEP 10's handshake.
- A magnet link: the same session plus the ut_metadata extension (without it a magnet
  link could never get its metadata); ut_pex stays off.
Settings: lt_common.py (loopback only; LT_SETTINGS and LT_PEER_LOG from the environment,
for the interop modes that need others). With PEER, libtorrent also
dials that address (connect_peer) besides the peers the tracker (and a link's x.pe) give.
Prints alerts, a progress line every 2 s, `METADATA <seconds>` once the metadata is there
(at once for a .torrent) and, at the end, `DONE <seconds to metadata> <seconds to complete>
<bytes>` (seconds from add_torrent). Exit 3 on timeout.
"""
import sys
import time

import libtorrent as lt

from lt_common import lt_settings, say_alert

source, out_dir, ip, port, timeout = sys.argv[1:6]
peer = sys.argv[6] if len(sys.argv) > 6 else ""
port, timeout = int(port), float(timeout)
magnet = source.startswith("magnet:")
T0 = time.monotonic()


def say(*a):
    print("[lt %7.2f]" % (time.monotonic() - T0), *a, flush=True)


settings = lt_settings(ip, port, "tracker_notification", "connect_notification",
                       announce_to_all_trackers=True)
ses = lt.session(settings, 0)  # flags 0: no default plugins (no ut_pex); see INTEROP-NOTES
if magnet:
    ses.add_extension("ut_metadata")
    atp = lt.parse_magnet_uri(source)
    say("libtorrent", lt.__version__, "magnet: trackers", list(atp.trackers),
        "x.pe peers", ["%s:%d" % p for p in atp.peers])
else:
    ti = lt.torrent_info(source)
    atp = lt.add_torrent_params()
    atp.ti = ti
    say("libtorrent", lt.__version__, "added", ti.name(), ti.total_size(), "bytes,",
        ti.num_pieces(), "pieces")
atp.save_path = out_dir
start = time.monotonic()
h = ses.add_torrent(atp)
if peer:
    pip, pport = peer.rsplit(":", 1)
    h.connect_peer((pip, int(pport)))
    say("connect_peer", peer)

deadline = start + timeout
last = 0.0
meta_at = None
peers_seen = {}
done = False
while time.monotonic() < deadline:
    for a in ses.pop_alerts():
        if isinstance(a, (lt.block_finished_alert, lt.piece_finished_alert, lt.block_downloading_alert)):
            continue
        say_alert(say, a)
    st = h.status()
    if meta_at is None and st.has_metadata:
        meta_at = time.monotonic() - start
        print("METADATA %.3f" % meta_at, flush=True)
    for p in h.get_peer_info():
        key = "%s:%d" % p.ip
        peers_seen[key] = max(peers_seen.get(key, 0), p.total_download)
    now = time.monotonic()
    if now - last >= 2:
        last = now
        say("progress %.1f%% state=%s metadata=%s down=%d peers=%d rate=%.1f MiB/s"
            % (st.progress * 100, st.state, st.has_metadata, st.total_wanted_done, st.num_peers,
               st.download_rate / 1048576))
    if st.has_metadata and (st.is_seeding or st.state == lt.torrent_status.seeding or st.is_finished):
        done = True
        break
    time.sleep(0.02)

elapsed = time.monotonic() - start
st = h.status()
total = h.torrent_file().total_size() if st.has_metadata else 0
say("peers seen (address: bytes received by the last sample):", peers_seen or "none")
say("final progress %.1f%% state=%s wanted_done=%d" % (st.progress * 100, st.state, st.total_wanted_done))
# Clean shutdown: pause, remove the torrent (flushes and closes the files).
h.pause()
ses.remove_torrent(h)
t = time.monotonic() + 15
removed = False
while time.monotonic() < t and not removed:
    for a in ses.pop_alerts():
        say_alert(say, a)
        if isinstance(a, lt.torrent_removed_alert):
            removed = True
    time.sleep(0.1)
del ses
if not done:
    say("TIMEOUT after %.1fs (metadata: %s)" % (elapsed, "yes" if meta_at is not None else "no"))
    sys.exit(3)
print("DONE %.3f %.3f %d" % (meta_at, elapsed, total), flush=True)
