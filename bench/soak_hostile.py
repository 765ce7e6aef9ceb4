#!/usr/bin/env python3
"""Hostile peers for `make soak` (bench/soak.sh). Standard library only.

  soak_hostile.py HOST PORT INFO_HASH_HEX PIECES PIECE_LEN MODE SECONDS [RANDOM_SEED]

Connects to a strand peer at HOST:PORT and misbehaves in one way (MODE) for at most SECONDS,
then closes everything and prints one line: "MODE: what happened". Every socket call has a
timeout, so the process always ends close to its deadline.

  garbage    good handshake, then frames of random ids/lengths, a 4 GiB length prefix,
             known ids with the wrong length; reconnects when strand drops it
  flood      good handshake + interested, then requests for valid blocks by the thousand,
             reading (and discarding) whatever comes back; reconnects when dropped
  noread     tiny receive buffer, good handshake + interested + 300 valid requests, then never
             reads a byte: strand's sender must not hang on it forever
  badreq     requests out of range (piece >= PIECES, 1 MiB blocks, begin past the piece end)
  churn      connect/disconnect as fast as it can: close at once, half a handshake,
             a full handshake then close, or an RST (SO_LINGER 0)
  wronghash  handshakes with a random info hash, over and over
  silent     8 connections: 4 say nothing, 4 handshake and then say nothing; held open
  slowloris  the handshake one byte per second, then a frame one byte per second
"""
import os
import random
import socket
import struct
import sys
import time

BLOCK = 16384


def hs_bytes(info_hash):
    return (b"\x13BitTorrent protocol" + bytes(8) + info_hash
            + b"-HS0001-" + os.urandom(12))


class Hostile:
    def __init__(self, host, port, info_hash, pieces, piece_len, seconds):
        self.addr = (host, port)
        self.ih = info_hash
        self.pieces = pieces
        self.plen = piece_len
        self.deadline = time.monotonic() + seconds
        self.t0 = time.monotonic()

    def left(self):
        return self.deadline - time.monotonic()

    def connect(self, rcvbuf=None, timeout=3.0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(max(0.1, min(timeout, self.left())))
        s.connect(self.addr)
        return s

    def recv_exact(self, s, n):
        buf = b""
        while len(buf) < n:
            s.settimeout(max(0.1, min(3.0, self.left())))
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("EOF")
            buf += chunk
        return buf

    def open_peer(self, rcvbuf=None):
        """Connect, exchange handshakes; returns the socket or raises."""
        s = self.connect(rcvbuf)
        s.sendall(hs_bytes(self.ih))
        theirs = self.recv_exact(s, 68)
        if theirs[28:48] != self.ih:
            s.close()
            raise ConnectionError("handshake with another info hash")
        return s

    def closed_by_peer(self, s, wait=0.0):
        """True if the other side has closed (EOF or reset); drains what is readable."""
        s.settimeout(max(0.001, wait))
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return True
                s.settimeout(0.001)
        except (socket.timeout, BlockingIOError):
            return False
        except OSError:
            return True

    def random_block(self):
        p = random.randrange(self.pieces)
        b = random.randrange(max(1, self.plen // BLOCK))
        return struct.pack(">IBIII", 13, 6, p, b * BLOCK, BLOCK)


def m_garbage(h):
    frames = drops = conns = 0
    while h.left() > 0.5:
        try:
            s = h.open_peer()
        except OSError:
            time.sleep(0.2)
            continue
        conns += 1
        try:
            while h.left() > 0.2:
                kind = random.randrange(4)
                if kind == 0:
                    n = random.randrange(1, 3000)
                    f = struct.pack(">I", n) + os.urandom(n)
                elif kind == 1:
                    f = struct.pack(">I", 0xFFFFFFF0) + os.urandom(64)
                elif kind == 2:  # a known id with the wrong length
                    mid = random.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20])
                    body = os.urandom(random.choice([1, 2, 3, 5, 7, 11]))
                    f = struct.pack(">IB", 1 + len(body), mid) + body
                else:  # an unknown id
                    body = os.urandom(random.randrange(0, 50))
                    f = struct.pack(">IB", 1 + len(body), random.randrange(21, 256)) + body
                s.settimeout(2)
                s.sendall(f)
                frames += 1
                if h.closed_by_peer(s, 0.05):
                    drops += 1
                    break
        except OSError:
            drops += 1
        finally:
            s.close()
    return f"{frames} garbage frames over {conns} connections, dropped by strand {drops} times"


def m_flood(h):
    reqs = got = drops = conns = 0
    while h.left() > 0.5:
        try:
            s = h.open_peer()
        except OSError:
            time.sleep(0.2)
            continue
        conns += 1
        try:
            s.sendall(struct.pack(">IB", 1, 2))  # interested
            while h.left() > 0.2:
                batch = b"".join(h.random_block() for _ in range(1000))
                s.settimeout(2)
                s.sendall(batch)
                reqs += 1000
                end = time.monotonic() + 0.3
                s.settimeout(0.05)
                while time.monotonic() < end:
                    try:
                        d = s.recv(1 << 20)
                    except socket.timeout:
                        continue
                    if not d:
                        raise ConnectionError("EOF")
                    got += len(d)
        except OSError:
            drops += 1
        finally:
            s.close()
    return f"{reqs} requests over {conns} connections, {got} bytes back, dropped by strand {drops} times"


def m_noread(h):
    try:
        s = h.open_peer(rcvbuf=4096)
    except OSError as e:
        return f"could not connect: {e}"
    try:
        s.sendall(struct.pack(">IB", 1, 2))
        time.sleep(min(1.0, max(0, h.left())))
        s.sendall(b"".join(h.random_block() for _ in range(300)))
    except OSError as e:
        s.close()
        return f"dropped while sending requests: {e}"
    start = time.monotonic()
    # Never read. Poll for a close by strand with MSG_PEEK-free means: a zero-byte send
    # cannot tell, so watch for an error on keep-alives (4 bytes, fits the send buffer).
    closed = None
    while h.left() > 0:
        time.sleep(min(1.0, max(0.01, h.left())))
        try:
            s.settimeout(1)
            s.send(bytes(4))
        except OSError:
            closed = time.monotonic() - start
            break
    s.close()
    if closed is None:
        return f"300 requests, never read; connection still open after {time.monotonic() - start:.0f}s"
    return f"300 requests, never read; strand closed it after {closed:.1f}s"


def m_badreq(h):
    sent = drops = conns = 0
    while h.left() > 0.5:
        try:
            s = h.open_peer()
            conns += 1
            s.sendall(struct.pack(">IB", 1, 2))
            kind = random.randrange(3)
            if kind == 0:
                r = struct.pack(">IBIII", 13, 6, h.pieces + random.randrange(1000), 0, BLOCK)
            elif kind == 1:
                r = struct.pack(">IBIII", 13, 6, random.randrange(h.pieces), 0, 1 << 20)
            else:
                r = struct.pack(">IBIII", 13, 6, random.randrange(h.pieces), h.plen, BLOCK)
            time.sleep(0.2)
            s.sendall(r)
            sent += 1
            if h.closed_by_peer(s, min(2.0, max(0.01, h.left()))):
                drops += 1
            s.close()
        except OSError:
            drops += 1
            time.sleep(0.1)
    return f"{sent} bad requests over {conns} connections, dropped by strand {drops} times"


def m_churn(h):
    n = fails = 0
    while h.left() > 0.1:
        try:
            kind = random.randrange(4)
            s = h.connect(timeout=1)
            if kind == 1:
                s.sendall(hs_bytes(h.ih)[:random.randrange(1, 67)])
            elif kind == 2:
                s.sendall(hs_bytes(h.ih))
                h.recv_exact(s, 68)
            elif kind == 3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            n += 1
        except OSError:
            fails += 1
        time.sleep(0.02)
    return f"{n} connect/disconnect cycles, {fails} failed"


def m_wronghash(h):
    n = answered = 0
    while h.left() > 0.3:
        try:
            s = h.connect()
            s.sendall(hs_bytes(os.urandom(20)))
            s.settimeout(max(0.1, min(2.0, h.left())))
            try:
                d = s.recv(68)
                if d:
                    answered += 1
            except OSError:
                pass
            s.close()
            n += 1
        except OSError:
            pass
        time.sleep(0.1)
    return f"{n} handshakes with a wrong info hash, strand answered {answered} of them"


def m_silent(h):
    socks = []
    for i in range(8):
        try:
            s = h.connect()
            if i % 2:
                s.sendall(hs_bytes(h.ih))
            socks.append([s, i % 2, None])
        except OSError:
            pass
    start = time.monotonic()
    while h.left() > 0 and any(c[2] is None for c in socks):
        for c in socks:
            if c[2] is None and h.closed_by_peer(c[0], 0.01):
                c[2] = time.monotonic() - start
        time.sleep(min(0.5, max(0.01, h.left())))
    held = time.monotonic() - start
    closed = [f"{c[2]:.1f}" for c in socks if c[2] is not None]
    for c in socks:
        c[0].close()
    return (f"{len(socks)} silent connections held {held:.0f}s; strand closed "
            f"{len(closed)} ({', '.join(closed) or '-'} s)")


def m_slowloris(h):
    try:
        s = h.connect()
    except OSError as e:
        return f"could not connect: {e}"
    data = hs_bytes(h.ih) + struct.pack(">IB", 1, 2) + h.random_block()
    sent = 0
    closed = False
    try:
        for b in data:
            if h.left() <= 0:
                break
            s.settimeout(2)
            s.send(bytes([b]))
            sent += 1
            if h.closed_by_peer(s, min(1.0, max(0.01, h.left()))):
                closed = True
                break
    except OSError:
        closed = True
    s.close()
    return f"{sent} bytes at one per second; strand {'closed it' if closed else 'kept it open'}"


MODES = {f.__name__[2:]: f for f in (m_garbage, m_flood, m_noread, m_badreq, m_churn,
                                      m_wronghash, m_silent, m_slowloris)}


def main():
    if len(sys.argv) < 8 or sys.argv[6] not in MODES:
        sys.exit(__doc__)
    host, port, ih, pieces, plen, mode, secs = sys.argv[1:8]
    random.seed(int(sys.argv[8]) if len(sys.argv) > 8 else None)
    h = Hostile(host, int(port), bytes.fromhex(ih), int(pieces), int(plen), float(secs))
    try:
        out = MODES[mode](h)
    except Exception as e:  # report, never hang
        out = f"error {type(e).__name__}: {e}"
    print(f"{mode}: {out}", flush=True)


if __name__ == "__main__":
    main()
