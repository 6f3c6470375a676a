#!/usr/bin/env python3
"""A searched trigger against the random triggers of the same length its run evaluated, on the
same sentences: McNemar's exact test (two-sided) on "still right after the trigger", for each
random trigger, from the run's examples.csv.

    python3 benches/trigger_vs_random.py results/trigger [more run folders...]

Prints one line per run: the trigger's accuracy after, each random trigger's, and the largest
(least significant) p over the random triggers, with the discordant counts behind it.
"""
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path


def exact_mcnemar(b, c):
    """Two-sided exact McNemar p: the binomial test of b against b + c at 1/2."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for run in map(Path, sys.argv[1:]):
        right = defaultdict(dict)  # group -> line -> still right after
        with open(run / "examples.csv", newline="") as f:
            for r in csv.DictReader(f):
                right[r["group"]][r["line"]] = r["perturbed_label"] == r["gold"]
        trigger = right.pop("trigger")
        lines = sorted(trigger)
        acc = sum(trigger[l] for l in lines) / len(lines)
        worst = None
        parts = []
        for group in sorted(right):
            rnd = right[group]
            b = sum(1 for l in lines if not trigger[l] and rnd[l])  # only the trigger fools it
            c = sum(1 for l in lines if trigger[l] and not rnd[l])  # only the random one does
            p = exact_mcnemar(b, c)
            parts.append(f"{group} {100 * sum(rnd[l] for l in lines) / len(lines):.1f}%")
            if worst is None or p > worst[0]:
                worst = (p, b, c, group)
        p, b, c, group = worst
        print(f"{run}: trigger {100 * acc:.1f}% of {len(lines)}; {', '.join(parts)}; "
              f"largest p = {p:.1e} ({group}: {b} vs {c})")


if __name__ == "__main__":
    main()
