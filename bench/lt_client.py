#!/usr/bin/python3
"""python3-libtorrent (Debian's /usr/bin/python3) as a benchmark seeder or downloader.

  lt_client.py [--encryption plain|rc4] seed IP:PORT DATA_DIR TORRENT...
        seed the torrents (data already complete: seed_mode, no re-check) until SIGTERM
  lt_client.py [--encryption plain|rc4] download IP:PORT OUT_DIR TORRENT
        download, print the elapsed time, exit 0

DHT, LSD, UPnP, NAT-PMP and uTP are off, no rate limits, several connections per IP allowed
(every client here is on 127.0.0.0/8). Encryption (default plain):
  plain  outgoing plaintext (out_enc_policy 2), incoming MSE accepted but only with plaintext
         payload (in_enc_policy 1, allowed_enc_level 1)
  rc4    MSE with RC4 forced both ways (in/out_enc_policy 0, allowed_enc_level 2)
"""
import signal
import sys
import time

import libtorrent as lt


def say(*a):
    print("[lt]", *a, flush=True)


ENCRYPTION = {
    "plain": {"in_enc_policy": 1, "out_enc_policy": 2, "allowed_enc_level": 1},
    "rc4": {"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2},
}


def session(listen, seeder, enc):
    s = lt.high_performance_seed() if seeder else lt.default_settings()
    ip = listen.rsplit(":", 1)[0]
    s.update({
        "listen_interfaces": listen,
        "outgoing_interfaces": ip,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": 0, "download_rate_limit": 0,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
    })
    s.update(ENCRYPTION[enc])
    return lt.session(s, 0)


def seed(listen, data_dir, torrents, enc):
    ses = session(listen, True, enc)
    for t in torrents:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(t)
        atp.save_path = data_dir
        atp.flags |= lt.torrent_flags.seed_mode
        ses.add_torrent(atp)
        say("seeding", atp.ti.name())
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    say("ready")
    while not stop:
        for a in ses.pop_alerts():
            say(type(a).__name__ + ":", a.message())
        time.sleep(0.5)
    say("stopping")


def download(listen, out_dir, torrent, enc):
    t0 = time.monotonic()
    ses = session(listen, False, enc)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = out_dir
    h = ses.add_torrent(atp)
    while True:
        for a in ses.pop_alerts():
            say(type(a).__name__ + ":", a.message())
        st = h.status()
        if st.is_finished or st.is_seeding:
            break
        time.sleep(0.05)
    # flush and close the files before exiting
    ses.remove_torrent(h)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(isinstance(a, lt.torrent_removed_alert) for a in ses.pop_alerts()):
            break
        time.sleep(0.05)
    del ses
    say("done in %.2f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    args, enc = sys.argv[1:], "plain"
    if args[:1] == ["--encryption"] and len(args) > 1:
        enc, args = args[1], args[2:]
    if len(args) < 4 or args[0] not in ("seed", "download") or enc not in ENCRYPTION:
        sys.exit(__doc__)
    if args[0] == "seed":
        seed(args[1], args[2], args[3:], enc)
    else:
        download(args[1], args[2], args[3], enc)
