#!/usr/bin/env python3
"""Leakage of a trigger search's exclusion, measured on a lexicon it was not built from.

For each opinion lexicon in turn, the search runs with the exclusion built from all the others
(their words, base forms and WordNet neighbours, and the polarity filter), and the held-out
lexicon's words are counted among the words the search was offered (its shortlist: every
HotFlip proposal) and among the trigger words it found. `trigger.json` says which lexicons list
each word in any inflection, so nothing is matched here; this script only runs the searches and
counts. Rates are k/n with 95% Wilson intervals; the totals pool every source and search.

    python3 benches/trigger_leakage.py                     # 8 lexicons x 2 directions, seed 13
    python3 benches/trigger_leakage.py --alternate         # 8 searches: one direction per lexicon
    python3 benches/trigger_leakage.py --sources huliu mpqa --seeds 13 14 --budget 9000

Needs ../shared/data/sst2 (the recipes attacks/trigger-{pos-to-neg,neg-to-pos}.toml) and
`scripts/setup`'s lexicons, WordNet and sentence encoder. Writes leakage.csv, searches.csv and
summary.md under --out (default results/leakage/<UTC time>/).
"""
import argparse
import csv
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["vader", "afinn", "pattern", "huliu", "mpqa", "gi", "nrc", "sentiwordnet"]
DIRECTIONS = {"pos-to-neg": "attacks/trigger-pos-to-neg.toml", "neg-to-pos": "attacks/trigger-neg-to-pos.toml"}


def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def rate(k, n):
    lo, hi = wilson(k, n)
    if n == 0:
        return f"n/a (0/0)"
    return f"{100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({k}/{n})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--robust", default=str(ROOT / "target/release/robust"))
    ap.add_argument("--sources", nargs="+", default=SOURCES, choices=SOURCES)
    ap.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[13])
    ap.add_argument("--budget", type=int, default=30000, help="query budget per search")
    ap.add_argument("--alternate", action="store_true",
                    help="one direction per held-out lexicon, taking the directions in turn (half the searches)")
    ap.add_argument("--extra", default="", help="more flags for every search, e.g. '--exclude-propagation 0'")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = args.out or ROOT / "results" / "leakage" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    lexicon = {s: ROOT / "corpora" / "opinion" / f"{s}.txt" for s in SOURCES}
    missing = [s for s, p in lexicon.items() if not p.is_file()]
    if missing:
        sys.exit(f"trigger_leakage: missing corpora/opinion/{missing[0]}.txt: run scripts/setup")
    searches = []
    for i, held in enumerate(args.sources):
        excluded = [s for s in SOURCES if s != held]
        directions = [args.directions[i % len(args.directions)]] if args.alternate else args.directions
        for direction in directions:
            for seed in args.seeds:
                run = out / "runs" / f"{held}-{direction}-{seed}"
                cmd = [args.robust, "-q", "attack", "--recipe", DIRECTIONS[direction], "--seed", str(seed),
                       "--budget-queries", str(args.budget), "--random-baselines", "0", "--out", str(run), "--force"]
                for s in excluded:
                    cmd += ["--exclude", str(lexicon[s].relative_to(ROOT))]
                cmd += args.extra.split()
                start = time.time()
                print(f"{held} held out, {direction}, seed {seed} ...", file=sys.stderr, flush=True)
                subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
                record = json.loads((run / "trigger.json").read_text())
                e = record["explanation"]
                shortlist = e["shortlist"]
                words = e["words"]
                searches.append({
                    "held_out": held,
                    "direction": direction,
                    "seed": seed,
                    "trigger": record["trigger"]["text"],
                    "shortlist": len(shortlist),
                    "shortlist_held_out": sum(held in w["lexicons"] for w in shortlist),
                    "shortlist_any": sum(bool(w["lexicons"]) for w in shortlist),
                    "trigger_words": len(words),
                    "trigger_held_out": sum(held in w["lexicons"] for w in words),
                    "held_out_words": " ".join(w["word"] for w in words if held in w["lexicons"]),
                    "shortlist_held_out_words": " ".join(w["word"] for w in shortlist if held in w["lexicons"]),
                    "allowed": record["exclusion"]["allowed"],
                    "seconds": round(time.time() - start, 1),
                })
    fields = list(searches[0])
    with open(out / "searches.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(searches)
    rows = []
    for held in args.sources + ["all"]:
        mine = [s for s in searches if held in ("all", s["held_out"])]
        k1, n1 = sum(s["shortlist_held_out"] for s in mine), sum(s["shortlist"] for s in mine)
        k2, n2 = sum(s["trigger_held_out"] for s in mine), sum(s["trigger_words"] for s in mine)
        lo1, hi1 = wilson(k1, n1)
        lo2, hi2 = wilson(k2, n2)
        rows.append({"held_out": held, "searches": len(mine),
                     "shortlist_k": k1, "shortlist_n": n1, "shortlist_rate": k1 / n1 if n1 else "",
                     "shortlist_ci_low": lo1, "shortlist_ci_high": hi1,
                     "trigger_k": k2, "trigger_n": n2, "trigger_rate": k2 / n2 if n2 else "",
                     "trigger_ci_low": lo2, "trigger_ci_high": hi2})
    with open(out / "leakage.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Trigger exclusion leakage ({dt.date.today()}, budget {args.budget}, seeds {args.seeds}, "
             f"directions {', '.join(args.directions)}{' in turn' if args.alternate else ''}{', extra: ' + args.extra if args.extra else ''})", "",
             "| held out | searches | held-out words among the shortlisted | among the trigger words | triggers |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        trig = "; ".join(f"\"{s['trigger']}\"" for s in searches if r["held_out"] in ("all", s["held_out"])) if r["held_out"] != "all" else ""
        lines.append(f"| {r['held_out']} | {r['searches']} | {rate(r['shortlist_k'], r['shortlist_n'])} | "
                     f"{rate(r['trigger_k'], r['trigger_n'])} | {trig} |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\n{out}", file=sys.stderr)


if __name__ == "__main__":
    main()
