"""Seed one torrent with python3-libtorrent (Debian's /usr/bin/python3), until SIGTERM.

argv: TORRENT DATA_DIR LISTEN_IP LISTEN_PORT
The data in DATA_DIR is hash-checked first; prints `SEEDING` once the check has passed and
the torrent seeds. The session loads no default plugins (flags 0: no ut_pex) and then only
ut_metadata, so a magnet downloader can fetch the info dictionary (BEP 9).
Settings: ../lt_common.py (loopback only; LT_SETTINGS and LT_PEER_LOG from the environment).
Prints every alert, and `PEER IP:PORT` the first time peer_info shows a peer at an address.
"""
import os
import signal
import sys
import time

import libtorrent as lt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lt_common import lt_settings, say_alert  # noqa: E402  (tests/interop/lt_common.py)

torrent, data_dir, ip, port = sys.argv[1:5]
T0 = time.monotonic()


def say(*a):
    print("[lt-seed %7.2f]" % (time.monotonic() - T0), *a, flush=True)


settings = lt_settings(ip, port, "tracker_notification", "connect_notification",
                       announce_to_all_trackers=True)
ses = lt.session(settings, 0)
ses.add_extension("ut_metadata")
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = data_dir
h = ses.add_torrent(atp)
say("libtorrent", lt.__version__, "checking", atp.ti.name())

stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
signal.signal(signal.SIGINT, lambda *_: stop.append(1))
seeding = False
peers_seen = set()
while not stop:
    for a in ses.pop_alerts():
        say_alert(say, a)
    for p in h.get_peer_info():
        key = "%s:%d" % p.ip
        if key not in peers_seen:
            peers_seen.add(key)
            print("PEER", key, flush=True)
    st = h.status()
    if not seeding and st.is_seeding:
        seeding = True
        print("SEEDING", flush=True)
    time.sleep(0.1)
say("stopping: uploaded %d bytes" % h.status().all_time_upload)
