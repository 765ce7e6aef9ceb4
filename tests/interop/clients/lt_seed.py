"""Seed one torrent with python3-libtorrent (Debian's /usr/bin/python3), until SIGTERM.

argv: TORRENT DATA_DIR LISTEN_IP LISTEN_PORT
The data in DATA_DIR is hash-checked first; prints `SEEDING` once the check has passed and
the torrent seeds. The session loads no default plugins (flags 0: no ut_pex) and then only
ut_metadata, so a magnet downloader can fetch the info dictionary (BEP 9).
DHT, LSD, UPnP, NAT-PMP and uTP are off; plaintext handshakes out, both accepted in.
LT_SETTINGS (JSON object, optional) overrides settings, for the modes that need others.
"""
import json
import os
import signal
import sys
import time

import libtorrent as lt

torrent, data_dir, ip, port = sys.argv[1:5]
T0 = time.monotonic()


def say(*a):
    print("[lt-seed %7.2f]" % (time.monotonic() - T0), *a, flush=True)


settings = {
    "listen_interfaces": "%s:%s" % (ip, port),
    "outgoing_interfaces": ip,
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "in_enc_policy": 1,   # pe_enabled: accept both
    "out_enc_policy": 2,  # pe_disabled: plaintext handshakes out
    "announce_to_all_trackers": True,
    "alert_mask": (lt.alert.category_t.error_notification
                   | lt.alert.category_t.status_notification
                   | lt.alert.category_t.tracker_notification
                   | lt.alert.category_t.connect_notification
                   | lt.alert.category_t.peer_notification),
}
settings.update(json.loads(os.environ.get("LT_SETTINGS") or "{}"))
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
while not stop:
    for a in ses.pop_alerts():
        say(type(a).__name__ + ":", a.message())
    st = h.status()
    if not seeding and st.is_seeding:
        seeding = True
        print("SEEDING", flush=True)
    time.sleep(0.1)
say("stopping: uploaded %d bytes" % h.status().all_time_upload)
