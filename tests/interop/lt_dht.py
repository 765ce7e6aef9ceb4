"""A python3-libtorrent session with only the DHT for finding peers, on loopback.

argv: MODE LISTEN_IP LISTEN_PORT TIMEOUT_S BOOTSTRAP_IP:PORT [SOURCE DIR]
MODE:
- node:  a DHT node holding no torrent (a router for the others); runs until TIMEOUT_S.
- seed:  seeds the .torrent SOURCE from DIR with its trackers dropped (replace_trackers([])),
         so the DHT is the only way to find it; runs until TIMEOUT_S. Prints SEEDING once
         the data is checked.
- fetch: downloads the magnet link SOURCE (no trackers) into DIR; exit 0 when complete,
         printing `DONE <seconds to metadata> <seconds to complete> <bytes>`, exit 3 on
         timeout.
The DHT settings are the ones INTEROP-NOTES.md gives for a loopback DHT: bootstrap from
BOOTSTRAP only, restrict_routing_ips and restrict_search_ips off; the rest is lt_common.py's
(LSD, UPnP, NAT-PMP and uTP off). Prints the DHT's node count every 2 s.
"""
import sys
import time
import warnings

import libtorrent as lt

from lt_common import lt_settings, say_alert

mode, ip, port, timeout, boot = sys.argv[1:6]
source = sys.argv[6] if len(sys.argv) > 6 else ""
out_dir = sys.argv[7] if len(sys.argv) > 7 else ""
port, timeout = int(port), float(timeout)
boot_ip, boot_port = boot.rsplit(":", 1)
T0 = time.monotonic()
warnings.simplefilter("ignore", DeprecationWarning)  # session.status(), for the node count


def say(*a):
    print("[lt %7.2f]" % (time.monotonic() - T0), *a, flush=True)


settings = lt_settings(
    ip, port, "dht_notification",
    enable_dht=True,
    dht_bootstrap_nodes=boot,
    dht_restrict_routing_ips=False,
    dht_restrict_search_ips=False,
    # A torrent added before the DHT has nodes is otherwise announced (and looked up) only
    # 15 minutes later.
    dht_announce_interval=5,
)
ses = lt.session(settings)
ses.add_dht_node((boot_ip, int(boot_port)))
say("libtorrent", lt.__version__, mode, "on %s:%d, DHT bootstrap %s" % (ip, port, boot))

h = None
if mode == "seed":
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(source)
    atp.save_path = out_dir
    h = ses.add_torrent(atp)
    h.replace_trackers([])
elif mode == "fetch":
    atp = lt.parse_magnet_uri(source)
    atp.save_path = out_dir
    h = ses.add_torrent(atp)
    h.replace_trackers([])
elif mode != "node":
    sys.exit("unknown mode " + mode)

start = time.monotonic()
deadline = start + timeout
last = 0.0
meta_at = None
seeding_said = False
done = False
while time.monotonic() < deadline:
    for a in ses.pop_alerts():
        if isinstance(a, (lt.block_finished_alert, lt.piece_finished_alert,
                          lt.block_downloading_alert, lt.dht_stats_alert)):
            continue
        say_alert(say, a)
    now = time.monotonic()
    if h is not None:
        st = h.status()
        if meta_at is None and st.has_metadata:
            meta_at = now - start
            print("METADATA %.3f" % meta_at, flush=True)
        if mode == "seed" and st.is_seeding and not seeding_said:
            seeding_said = True
            print("SEEDING", flush=True)
        if mode == "fetch" and st.has_metadata and (st.is_seeding or st.is_finished):
            done = True
            break
    if now - last >= 2:
        last = now
        nodes = ses.status().dht_nodes
        if h is not None:
            st = h.status()
            say("dht nodes %d, progress %.1f%% state=%s peers=%d" % (nodes, st.progress * 100, st.state, st.num_peers))
        else:
            say("dht nodes %d" % nodes)
    time.sleep(0.05)

elapsed = time.monotonic() - start
if mode != "fetch":
    sys.exit(0)
total = h.torrent_file().total_size() if h.status().has_metadata else 0
h.pause()
ses.remove_torrent(h)
time.sleep(0.5)
if not done:
    say("TIMEOUT after %.1fs (metadata: %s)" % (elapsed, "yes" if meta_at is not None else "no"))
    sys.exit(3)
print("DONE %.3f %.3f %d" % (meta_at, elapsed, total), flush=True)
