"""The settings every python3-libtorrent session of the interop scripts starts from.

`lt_settings(ip, port, *categories, **extra)` gives a session that listens on and dials from
IP:PORT only (loopback), with DHT, LSD, UPnP, NAT-PMP and uTP off, several connections per
IP allowed (all peers share 127/8), encrypted and plaintext handshakes accepted in and
plaintext handshakes out, and alerts for errors, status and peers plus CATEGORIES (names of
`lt.alert.category_t`, e.g. "tracker_notification"). EXTRA (keyword settings) come next; a
session that needs the DHT turns it on there. Last, two environment variables a driver sets:
- LT_SETTINGS: a JSON object of settings (the interop modes that need others, e.g. forced
  RC4 encryption);
- LT_PEER_LOG=1: libtorrent's peer log too (`peer_log_alert`: every message on the wire,
  `*** ENCRYPTION ...`), with a queue large enough that no alert is dropped.
`say_alert(say, alert)` prints one alert the way the scripts do, leaving out the peer-log
lines of socket reads and writes and of per-block messages (thousands a download) that
would only bury the rest: it keeps the messages (`<==`, `==>`) but for the per-block ones
(and the `decrypted block` lines of each RC4 message), the connections, and the `***`
events such as ENCRYPTION.
"""
import json
import os
import re

import libtorrent as lt

# A peer-log line: "... [IP:PORT] MODE EVENT [ details ]".
PEER_LOG_EVENT = re.compile(r"\] (<==|==>|<<<|>>>|\*\*\*) ([A-Z_]+) \[")
KEPT_IO = ("INCOMING_CONNECTION", "OUTGOING_CONNECTION")
NOISY = ("ON_SEND_DATA", "SEND_BUFFER_WATERMARK", "REQUEST", "PIECE", "HAVE", "CANCEL")


def lt_settings(ip, port, *categories, **extra):
    cat = lt.alert.category_t
    mask = cat.error_notification | cat.status_notification | cat.peer_notification
    for name in categories:
        mask |= getattr(cat, name)
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
        "user_agent": "strand-interop/libtorrent-" + lt.__version__,
    }
    settings.update(extra)
    settings.update(json.loads(os.environ.get("LT_SETTINGS") or "{}"))
    if os.environ.get("LT_PEER_LOG") == "1":
        mask |= cat.peer_log_notification
        settings["alert_queue_size"] = 100000
    settings["alert_mask"] = mask
    return settings


def say_alert(say, a):
    """Print alert A with SAY, unless it is a per-block peer-log line."""
    msg = a.message()
    if isinstance(a, lt.peer_log_alert):
        m = PEER_LOG_EVENT.search(msg)
        if m:
            mode, event = m.groups()
            io = mode in ("<<<", ">>>") and event not in KEPT_IO
            per_message = mode in ("<==", "==>") and event == "ENCRYPTION"
            if io or per_message or event in NOISY:
                return
    say(type(a).__name__ + ":", msg)
