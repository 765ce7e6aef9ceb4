"""Make a libtorrent 2.0 hybrid (v1 + v2) torrent of a folder, with its default pad files,
and seed it on loopback until killed.

argv: FOLDER TORRENT_OUT LISTEN_IP LISTEN_PORT
`lt.create_torrent(fs, 32768)` makes a hybrid with `.pad/N` files (attr "p") between files
by default. Settings: lt_common.py (loopback only). Prints `SEEDING` once libtorrent has
checked the data and is a seed.
"""
import os
import sys
import time

import libtorrent as lt

from lt_common import lt_settings

folder, torrent_out, ip, port = sys.argv[1:5]
fs = lt.file_storage()
lt.add_files(fs, folder)
ct = lt.create_torrent(fs, 32768)
ct.add_tracker("http://%s:9/announce" % ip)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(folder)))
with open(torrent_out, "wb") as f:
    f.write(lt.bencode(ct.generate()))

ses = lt.session(lt_settings(ip, port), 0)
h = ses.add_torrent({
    "ti": lt.torrent_info(torrent_out),
    "save_path": os.path.dirname(os.path.abspath(folder)),
})
deadline = time.monotonic() + 60
while not h.status().is_seeding:
    if time.monotonic() > deadline:
        print("not a seed after 60 s:", h.status().state, flush=True)
        sys.exit(3)
    time.sleep(0.2)
print("SEEDING", flush=True)
while True:
    time.sleep(1)
