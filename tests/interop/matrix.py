"""Print the interop matrix (Markdown) from the result lines run.sh and cell.sh wrote.

--results DIR: one CLIENT.DIRECTION.MODE.tsv per cell, a line
  client direction mode PASS|FAIL|N/A seconds MB/s note version
--features FILE: label status seconds what, one line per feature case.
Cells with no result file are shown as "not run" (with ONLY=...).
"""
import argparse
import os

DIRS = [("seeds", "strand ← client"), ("gets", "strand → client")]


def main():
    ap = argparse.ArgumentParser()
    for a in ("results", "features", "clients", "modes", "seconds", "jobs", "commit", "strand"):
        ap.add_argument("--" + a, default="")
    o = ap.parse_args()
    clients, modes = o.clients.split(), o.modes.split()

    cells, versions = {}, {}
    for c in clients:
        for d, _ in DIRS:
            for m in modes:
                p = os.path.join(o.results, "%s.%s.%s.tsv" % (c, d, m))
                if os.path.exists(p):
                    f = (open(p).read().rstrip("\n").split("\t") + [""] * 8)[:8]
                    cells[c, d, m] = f
                    if f[7]:
                        versions[c] = f[7]

    notes = []

    def note(text):
        if text not in notes:
            notes.append(text)
        return notes.index(text) + 1

    counts = {"PASS": 0, "FAIL": 0, "N/A": 0}
    out = ["# Interop matrix", ""]
    out.append("%s (commit %s) against the BitTorrent clients in Debian, each cell in its "
               "own network namespace with only `lo`, through a whitelist-only opentracker. "
               "Written by `make interop` (tests/interop/run.sh); do not edit by hand." % (o.strand, o.commit))
    out.append("")
    out.append("**strand ← client**: the client seeds, `strand download` fetches. "
               "**strand → client**: `strand seed` seeds, the client downloads. "
               "**plain**: both get the .torrent; **magnet**: the downloader gets only "
               "`magnet:?xt=…&dn=…&tr=…` and fetches the info dictionary from the seeder (BEP 9); "
               "**encrypted**: the .torrent, the client set to require encryption and strand "
               "`--encryption require` (RC4 streams only), with the witness of RC4 in the notes. "
               "Payload: 5.0 MiB in 4 files (one empty, one nested), 64 KiB pieces; every file "
               "compared byte for byte. Seconds: from the moment the downloader has the torrent or "
               "link (a daemon: once it is up) to complete, so with the tracker round and, for "
               "magnet, the metadata; MB/s = payload / that time: on 5 MiB it measures the "
               "first seconds of a swarm (announce, handshakes, unchoke) more than the wire.")
    out.append("")
    head = ["client"] + ["%s, %s" % (label, m) for d, label in DIRS for m in modes]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for c in clients:
        row = ["**%s**%s" % (c, " (%s)" % versions[c] if c in versions else "")]
        for d, _ in DIRS:
            for m in modes:
                f = cells.get((c, d, m))
                if f is None:
                    row.append("not run")
                    continue
                status, secs, speed, text = f[3], f[4], f[5], f[6]
                counts[status] = counts.get(status, 0) + 1
                if status == "PASS":
                    cell = "PASS %s s" % secs
                    if speed not in ("", "-"):
                        cell += ", %s MB/s" % speed
                    if text:
                        cell += " [%d]" % note(text)
                elif status == "N/A":
                    cell = "n/a [%d]" % note(text)
                else:
                    cell = "**FAIL** %s s [%d]" % (secs, note(text or "no reason logged"))
                row.append(cell)
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    for i, text in enumerate(notes, 1):
        out.append("[%d] %s  " % (i, text.replace("|", "/")))
    if notes:
        out.append("")

    if o.features and os.path.exists(o.features):
        out.append("## strand's feature cases")
        out.append("")
        out.append("| case | result | seconds | what it checks |")
        out.append("|---|---|---|---|")
        for line in open(o.features):
            label, status, secs, what = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
            out.append("| %s | %s | %s | %s |" % (label, status if status == "PASS" else "**FAIL**", secs, what))
        out.append("")

    out.append("Cells: %d pass, %d fail, %d n/a. Whole run: %s s wall time, %s jobs at a time, "
               "on a 2-core machine shared with other work." % (
                   counts["PASS"], counts["FAIL"], counts["N/A"], o.seconds, o.jobs))
    print("\n".join(out))


main()
