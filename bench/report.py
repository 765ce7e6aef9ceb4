#!/usr/bin/env python3
"""Turn the benchmark's raw measurements into Markdown tables (standard library only).

  report.py main RUNS.tsv RESULTS.md|- [--mode M --clients "..." --profile F ...]
  report.py scale SCALE.tsv RESULTS.md|- [...]

With a file, the section between `<!-- BEGIN name -->` and `<!-- END name -->` is replaced
(and appended if missing); everything else in the file is left alone. With `-`, print only.
"""
import argparse
import csv
import datetime
import os
import platform
import re
import statistics
import subprocess

GIB = 1 << 30
# Issue 16's goals: MB/s at least 1.25x the best other client; CPU s/GiB at most the lowest
# other's (stretch: 0.8x of it); peak RSS at most the lowest other's. scale_rss_mib is
# bench-scale's older absolute bound.
TARGETS = dict(speed=1.25, cpu=1.0, cpu_stretch=0.8, rss=1.0, scale_rss_mib=150)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024 // 1024
    return "%s CPUs (`nproc`), %s, %d GiB RAM, Linux %s" % (
        os.cpu_count() and subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        model, mem, platform.release())


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def replace_section(path, name, body):
    begin, end = "<!-- BEGIN %s -->" % name, "<!-- END %s -->" % name
    block = "%s\n%s\n%s" % (begin, body.rstrip(), end)
    if path == "-":
        print(block)
        return
    text = open(path).read() if os.path.exists(path) else "# strand benchmark results\n"
    if begin in text and end in text:
        a, rest = text.split(begin, 1)
        _, b = rest.split(end, 1)
        text = a + block + b
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(block)

ENC_TITLE = {"plain": "plaintext (strand `--encryption off`)",
             "rc4": "RC4 required (strand `--encryption require`)"}


def payload_table(out, a, payload, enc, prs, clients):
    """Appends one torrent's table for one policy; returns the per-client stats."""
    size = int(prs[0]["bytes"])
    stats = {}
    for c in dict.fromkeys(r["client"] for r in prs):
        rs = [r for r in prs if r["client"] == c]
        speeds = [int(r["bytes"]) / float(r["secs"]) / 1e6 for r in rs]
        cpu = [(float(r["user"]) + float(r["sys"])) / (int(r["bytes"]) / GIB) for r in rs]
        rss = [int(r["maxrss_kb"]) / 1024 for r in rs]
        stats[c] = dict(speed=statistics.median(speeds), speeds=speeds, cpu=statistics.median(cpu),
                        rss=max(rss), n=len(rs))
    title = {"big": "one %.0f MiB file, 1 MiB pieces" % (size / 2**20),
             "small": "%s small files of mixed sizes, %.0f MiB in all, 256 KiB pieces" % (a.small_count, size / 2**20)}[payload]
    out.append("")
    out.append("### %s, %s" % (title, ENC_TITLE.get(enc, enc)))
    out.append("")
    out.append("| client | median MB/s | runs MB/s | CPU s / GiB (user+sys, median) | peak RSS MiB (max) |")
    out.append("| --- | ---: | --- | ---: | ---: |")
    for c in clients or list(stats):
        if c in stats:
            s = stats[c]
            out.append("| %s | %.1f | %s | %.2f | %.1f |" % (
                c, s["speed"], ", ".join("%.0f" % x for x in s["speeds"]), s["cpu"], s["rss"]))
        else:
            why = "n/a (no MSE)" if enc == "rc4" and c == "rqbit" else "n/a (not run)"
            out.append("| %s | %s | | | |" % (c, why))
    others = {c: s for c, s in stats.items() if c != "strand"}
    if "strand" in stats and others:
        st = stats["strand"]
        bs = max(others, key=lambda c: others[c]["speed"])
        bc = min(others, key=lambda c: others[c]["cpu"])
        br = min(others, key=lambda c: others[c]["rss"])
        r_speed = st["speed"] / others[bs]["speed"]
        r_cpu = st["cpu"] / others[bc]["cpu"]
        out.append("")
        out.append("| strand / best other | ratio | target | met |")
        out.append("| --- | ---: | --- | --- |")
        out.append("| throughput vs %s | %.2f | >= %.2f | %s |" % (bs, r_speed, TARGETS["speed"], "yes" if r_speed >= TARGETS["speed"] else "**no**"))
        r_rss = st["rss"] / others[br]["rss"]
        out.append("| CPU s/GiB vs %s | %.2f | <= %.2f (stretch %.2f) | %s |" % (
            bc, r_cpu, TARGETS["cpu"], TARGETS["cpu_stretch"],
            ("yes, stretch too" if r_cpu <= TARGETS["cpu_stretch"] else "yes") if r_cpu <= TARGETS["cpu"] else "**no**"))
        out.append("| peak RSS vs %s | %.2f (%.1f MiB against %.1f) | <= %.2f | %s |" % (
            br, r_rss, st["rss"], others[br]["rss"], TARGETS["rss"], "yes" if r_rss <= TARGETS["rss"] else "**no**"))
    return stats


def main_report(a):
    rows = list(csv.DictReader(open(a.runs), delimiter="\t"))
    out = []
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out.append("Run %s (`bench.sh %s`, %d s in all) on %s." % (now, a.mode, a.elapsed, machine()))
    out.append("")
    out.append("Versions: %s; aria2c %s; libtorrent %s; %s." % (
        version([a.strand, "--version"]),
        version(["aria2c", "--version"]).replace("aria2 version ", ""),
        version(["/usr/bin/python3", "-c", "import libtorrent; print(libtorrent.__version__)"]),
        ("rqbit " + version([a.rqbit, "--version"]).replace("rqbit ", "")) if os.path.exists(a.rqbit) else "rqbit: not installed"))
    if a.note:
        out.append("")
        out.append("**Note:** " + a.note)
    encs = a.encryptions.split() or list(dict.fromkeys(r.get("enc", "plain") for r in rows))
    clients = a.clients.split()
    cost = []
    for payload in ("big", "small"):
        for enc in encs:
            prs = [r for r in rows if r["payload"] == payload and r.get("enc", "plain") == enc]
            if not prs:
                continue
            stats = payload_table(out, a, payload, enc, prs, clients)
            if "strand" in stats:
                cost.append((payload, enc, stats["strand"]))
    plain = {p: st for p, e, st in cost if e == "plain"}
    rc4 = {p: st for p, e, st in cost if e == "rc4"}
    if plain and rc4:
        out.append("")
        out.append("### The cost of RC4 to strand (`--encryption require` against `--encryption off`)")
        out.append("")
        out.append("| torrent | MB/s off → require | ratio | CPU s/GiB off → require | peak RSS MiB off → require |")
        out.append("| --- | --- | ---: | --- | --- |")
        for p in ("big", "small"):
            if p in plain and p in rc4:
                x, y = plain[p], rc4[p]
                out.append("| %s | %.1f → %.1f | %.2f | %.2f → %.2f | %.1f → %.1f |" % (
                    p, x["speed"], y["speed"], y["speed"] / x["speed"], x["cpu"], y["cpu"], x["rss"], y["rss"]))
    if a.commands and os.path.exists(a.commands):
        out.append("")
        out.append("Commands (inside the namespace; T, OUT, IP, PORT change per run):")
        out.append("")
        out.append("```")
        out.extend(l.rstrip() for l in open(a.commands))
        out.append("```")
    replace_section(a.results, "main" if a.mode == "full" else a.mode, "\n".join(out))
    threads = dict(x.split("=", 1) for x in a.profile_threads)
    for enc, path in (x.split("=", 1) for x in a.profile):
        name = "profile" if enc == "plain" else "profile-" + enc
        p = ["Profile of one strand download of the big torrent, %s (`perf record -e cpu-clock -F 999`, "
             "self time, `perf report --no-children --sort dso,symbol`), %s:" % (ENC_TITLE.get(enc, enc), now), "",
             "| share | where | function |", "| ---: | --- | --- |"]
        for line in open(path):
            parts = line.split(None, 3)
            if len(parts) >= 4:
                fn = re.sub(r"(\s+-)+\s*$", "", parts[3]).strip()
                p.append("| %s | %s | `%s` |" % (parts[0], parts[1], fn.replace("|", "\\|")))
        if enc in threads and os.path.exists(threads[enc]):
            p += ["", "By thread (`--sort comm`):", "", "| share | thread |", "| ---: | --- |"]
            for line in open(threads[enc]):
                parts = line.split(None, 1)
                if len(parts) == 2:
                    p.append("| %s | %s |" % (parts[0], re.sub(r"(\s+-)+\s*$", "", parts[1]).strip()))
        replace_section(a.results, name, "\n".join(p))


def scale_report(a):
    r = dict(l.rstrip("\n").split("\t", 1) for l in open(a.runs) if "\t" in l)
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rss = int(r["maxrss_kb"]) / 1024
    out = ["Run %s on %s." % (now, machine()), "",
           "strand downloads a %s MiB torrent (%s pieces) from %s peers at once (bench/seeder: every "
           "peer holds a different subset of about 40%% of the pieces and paces each connection to %s KiB/s, "
           "i.e. at most %.0f MB/s in all)." % (r["mib"], r["pieces"], r["peers"], r.get("rate_kib", "?"),
                                               int(r["peers"]) * int(r.get("rate_kib", 0)) * 1024 / 1e6), "",
           "| measure | value | target |", "| --- | ---: | --- |",
           "| peer connections established at once (max, `ss` every %s s) | %s | 300 |" % (r.get("sample", "?"), r.get("peers_seen", "?")),
           "| throughput | %.1f MB/s | |" % (int(r["bytes"]) / float(r["secs"]) / 1e6),
           "| peak RSS | %.1f MiB | <= %d MiB: %s |" % (rss, TARGETS["scale_rss_mib"], "yes" if rss <= TARGETS["scale_rss_mib"] else "**no**"),
           "| max threads (/proc/PID/status every %s s) | %s | |" % (r.get("sample", "?"), r["max_threads"]),
           "| CPU user+sys | %.2f s (%.2f s/GiB) | |" % (float(r["user"]) + float(r["sys"]),
                                                      (float(r["user"]) + float(r["sys"])) / (int(r["bytes"]) / GIB)),
           "| the seeder's CPU user+sys (same machine) | %s s | |" % r.get("seeder_cpu", "?"),
           "", "Command: `%s`" % r["command"]]
    replace_section(a.results, "scale", "\n".join(out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["main", "scale"])
    ap.add_argument("runs")
    ap.add_argument("results")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--clients", default="")
    ap.add_argument("--seeders", default="")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--note", default="")
    ap.add_argument("--small-count", default="?")
    ap.add_argument("--commands")
    ap.add_argument("--strand", default="strand")
    ap.add_argument("--rqbit", default="")
    ap.add_argument("--encryptions", default="")
    ap.add_argument("--profile", action="append", default=[], help="ENC=FILE (perf report by symbol)")
    ap.add_argument("--profile-threads", action="append", default=[], help="ENC=FILE (perf report by thread)")
    a = ap.parse_args()
    (main_report if a.kind == "main" else scale_report)(a)
