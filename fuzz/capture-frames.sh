#!/usr/bin/env bash
# Captures real peer-wire traffic for the fuzz seeds (needs root, python3-libtorrent): inside a
# network namespace with only `lo`, python3-libtorrent downloads a 2 MiB torrent from a
# `strand seed` through fuzz/capture.py, which records the first 64 KiB each side sent. The
# two streams become wire_stream seeds (handshake, then messages, as the other side reads
# them); the first frame of each message id becomes a wire_message seed; the payload of each
# extension message becomes an extension seed. Files are named libtorrent-* and strand-*.
#
#   sudo bash fuzz/capture-frames.sh        # writes into fuzz/corpus/
#
# Environment: STRAND (default target/release/strand), LT_PYTHON (default /usr/bin/python3).
CASE_NAME=capture
. "$(dirname "$0")/../tests/interop/lib.sh"
FUZZ_DIR=$REPO_ROOT/fuzz
STRAND=${STRAND:-$REPO_ROOT/target/release/strand}
LT_PYTHON=${LT_PYTHON:-/usr/bin/python3}
SEED_PORT=6891
RELAY_PORT=6892
LT_PORT=6893

require ip python3 timeout
[[ -x $STRAND ]] || die "strand binary not found at $STRAND (make build)"
"$LT_PYTHON" -c 'import libtorrent' 2>/dev/null || die "$LT_PYTHON cannot import libtorrent"
interop_init

NAME=capture
setup_payload "2 MiB" "$NAME/a.bin:1500000" "$NAME/b.bin:597152"
torrent_by_strand_create 65536 http://127.0.0.1:1/announce
start_bg seed "$STRAND" seed --no-dht "$TORRENT" -d "$SEED_DIR" --bind 127.0.0.1 --port $SEED_PORT
wait_for 30 "strand seed listens" nsx python3 -c \
    "import socket; socket.create_connection(('127.0.0.1', $SEED_PORT), timeout=1).close()"
start_bg relay python3 "$FUZZ_DIR/capture.py" $RELAY_PORT $SEED_PORT "$WORK/stream" 30
sleep 0.5
run_ns libtorrent timeout 40 "$LT_PYTHON" "$INTEROP_DIR/lt_download.py" "$TORRENT" \
    "$OUT_DIR" 127.0.0.1 $LT_PORT 30 127.0.0.1:$RELAY_PORT || die "libtorrent did not complete"
wait_for 35 "the relay wrote its capture" test -s "$WORK/stream.server"

python3 - "$WORK/stream" "$FUZZ_DIR/corpus" <<'PYEOF'
import os, struct, sys
prefix, corpus = sys.argv[1:3]
for side, who in (("client", "libtorrent"), ("server", "strand")):
    data = open(prefix + "." + side, "rb").read()
    with open(os.path.join(corpus, "wire_stream", who + "-capture"), "wb") as f:
        f.write(data)
    i, extended, ids = 68, 0, set()
    while i + 4 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        frame = data[i + 4:i + 4 + n]
        if len(frame) < n:
            break
        i += 4 + n
        if n == 0:
            continue
        if frame[0] == 20:  # every extension message: handshake, ut_metadata, ut_pex
            extended += 1
            name = "%s-capture-20-%d" % (who, extended)
            with open(os.path.join(corpus, "extension", name), "wb") as f:
                f.write(frame[2:])
        elif frame[0] in ids:
            continue
        else:
            name = "%s-capture-%d" % (who, frame[0])
        ids.add(frame[0])
        with open(os.path.join(corpus, "wire_message", name), "wb") as f:
            f.write(frame)
    print(who, len(data), "bytes,", "message ids", sorted(x for x in ids if x < 1000))
PYEOF
interop_pass
