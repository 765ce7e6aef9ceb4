#!/usr/bin/env python3
"""Deterministic benchmark payloads (standard library only). Never committed: made at run time.

  payload.py big DIR NAME SIZE_MIB      one file DIR/NAME of SIZE_MIB MiB; MiB number i is
                                        SHAKE-128("strand-bench:NAME:i"), so the same call
                                        always gives the same bytes, on any machine.
  payload.py small DIR NAME COUNT       COUNT files under DIR/NAME/dNN/, sizes mixed from 1 byte
                                        to 1 MiB (log-uniform, fixed by the file's index), each
                                        file's bytes SHAKE-128 of its path. Prints the total size.
"""
import hashlib
import os
import sys

MIB = 1 << 20


def big(root, name, mib):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, name), "wb") as f:
        for i in range(mib):
            f.write(hashlib.shake_128(b"strand-bench:%s:%d" % (name.encode(), i)).digest(MIB))


def small(root, name, count):
    total = 0
    for i in range(count):
        h = hashlib.sha256(b"strand-bench-size:%d" % i).digest()
        # log-uniform between 2^0 and 2^20 bytes, plus a little jitter: mixed small and medium
        exp = h[0] % 21
        size = max(1, (1 << exp) + int.from_bytes(h[1:4], "big") % max(1, 1 << exp))
        size = min(size, MIB)
        rel = "%s/d%02d/f%04d.bin" % (name, i % 20, i)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(hashlib.shake_128(("strand-bench:" + rel).encode()).digest(size))
        total += size
    print(total)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("big", "small"):
        sys.exit(__doc__)
    {"big": big, "small": small}[sys.argv[1]](sys.argv[2], sys.argv[3], int(sys.argv[4]))
