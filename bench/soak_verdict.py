#!/usr/bin/env python3
"""The verdict of `make soak` (bench/soak.sh) on its CSV. Standard library only.

  soak_verdict.py CSV [WARMUP_S] [GROWTH_PCT]

Does anything grow? Thread count, open fds and memory all follow the load (each connection
has two threads and a socket, and buffers), and the load is random, so comparing the start
with the end of the churn would mostly compare two moments' peer counts. Instead, for each
judged figure, a least-squares fit over the churn samples after WARMUP_S (default 60):

    figure = a + b * peers + c * t

where peers is the number of established connections at that sample and t the time. The
drift c * (length of the window) is what the figure gained over the window that the peer
count does not explain. It "grows" if the drift is over GROWTH_PCT (default 10) percent of
the figure's mean, and at least 2 (a thread more or less is noise). The window starts after
WARMUP_S: soak.sh passes half the churn, so the question is whether a figure is still
growing once the allocator's caches have filled, not whether they filled.

Judged by drift: rss_anon_kib (heap and stacks) and threads. Judged by the quiet samples
(no peer connected, before and after the churn; more than +2 is "grows"): threads and fds.
The fd drift is only reported: besides sockets it counts the payload files each sending
thread has open, which follow what its peer asks for, not the peer count. Reported only:
rss_kib and rss_file_kib (pages of the binary and libc read in as code first runs; bounded by
the files' size), and peers (the load). Older CSVs without the anon/file columns are judged
on rss_kib.
Exit 0 if nothing grows, 1 if something does, 2 if there are too few samples.
"""
import csv
import sys


def fit(ys, peers, ts):
    """Least squares y = a + b*peers + c*t; returns (b, c). With the variables centred on
    their means, b and c solve two equations (Cramer's rule); if the peer count never
    changed, b is 0 and c the plain slope over time."""
    n = len(ys)
    my, mp, mt = sum(ys) / n, sum(peers) / n, sum(ts) / n
    dy = [y - my for y in ys]
    dp = [p - mp for p in peers]
    dt = [t - mt for t in ts]
    spp = sum(p * p for p in dp)
    stt = sum(t * t for t in dt)
    spt = sum(p * t for p, t in zip(dp, dt))
    spy = sum(p * y for p, y in zip(dp, dy))
    sty = sum(t * y for t, y in zip(dt, dy))
    det = spp * stt - spt * spt
    if abs(det) < 1e-9 * max(1.0, spp * stt):
        return 0.0, sty / stt
    return (spy * stt - sty * spt) / det, (spp * sty - spt * spy) / det


def main():
    path = sys.argv[1]
    warmup = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    pct = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    rows = list(csv.DictReader(open(path)))
    churn = [r for r in rows if r["phase"] == "churn" and float(r["t_s"]) >= warmup]
    quiet = [r for r in rows if r["phase"] == "quiet"]
    if len(churn) < 10 or len(quiet) < 2:
        print(f"too few samples for a verdict ({len(churn)} churn after {warmup:.0f} s, {len(quiet)} quiet)")
        return 2
    q0, q1 = quiet[0], quiet[-1]
    mem = "rss_anon_kib" if "rss_anon_kib" in rows[0] else "rss_kib"
    drift_judged = (mem, "threads")
    shown = [f for f in ("rss_kib", "rss_anon_kib", "rss_file_kib", "threads", "fds", "peers") if f in rows[0]]
    ts = [float(r["t_s"]) for r in churn]
    peers = [float(r["peers"]) for r in churn]
    span = ts[-1] - ts[0]
    print(f"{len(rows)} samples; {len(churn)} churn samples over {span / 60:.1f} min after a {warmup:.0f} s "
          f"warm-up; drift = growth over the churn not explained by the peer count (limit {pct:.0f}% of the mean)")
    print(f"{'figure':12} {'quiet0':>7} {'min':>7} {'mean':>8} {'max':>7} {'quiet1':>7} "
          f"{'per peer':>9} {'drift':>8} {'drift %':>8}  grows?")
    grows = False
    for f in shown:
        ys = [float(r[f]) for r in churn]
        mean = sum(ys) / len(ys)
        per_peer, slope = fit(ys, peers, ts) if f != "peers" else (0.0, 0.0)
        drift = slope * span
        drift_pct = drift / mean * 100 if mean else 0.0
        why = []
        if f in drift_judged or f == "fds":
            if f in drift_judged and drift > max(pct / 100 * mean, 2):
                why.append(f"drift {drift:+.1f} ({drift_pct:+.1f}%)")
            if f in ("threads", "fds") and float(q1[f]) > float(q0[f]) + 2:
                why.append(f"quiet {q0[f]} -> {q1[f]}")
            verdict = "YES: " + ", ".join(why) if why else "no"
        else:
            verdict = "(load)" if f == "peers" else "(reported)"
        grows |= bool(why)
        print(f"{f:12} {q0[f]:>7} {min(ys):>7.0f} {mean:>8.1f} {max(ys):>7.0f} {q1[f]:>7} "
              f"{per_peer:>9.2f} {drift:>+8.1f} {drift_pct:>+7.1f}%  {verdict}")
    print(f"cpu: {q0['cpu_s']} s at the quiet start, {q1['cpu_s']} s at the quiet end")
    return 1 if grows else 0


if __name__ == "__main__":
    sys.exit(main())
