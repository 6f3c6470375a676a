#!/usr/bin/env python3
"""Write corpora/rt-snippets-heldout.ids: the Rotten Tomatoes snippets (vaderSentiment 3.3.2 sdist,
movieReviewSnippets_GroundTruth.txt) that are in neither SST-2 train nor SST-2 dev.

SST was built from these same sentences, and the default model is fine-tuned on SST-2 train, so
scoring it on all of them would score it on its training data. SST's text is re-tokenised
(lower-cased, `-lrb-`, split clitics), so exact matching misses many; a snippet is dropped when at
least half of its word 4-grams occur in SST-2 train or dev. Snippets under four words (no 4-gram)
and those with a mean human rating of exactly 0 (no polarity) are dropped too.

Usage: python corpora/recipes/rt_heldout_ids.py ../shared/data/sst2 > corpora/rt-snippets-heldout.ids
"""
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def words(s):
    s = s.lower().replace("-lrb-", "(").replace("-rrb-", ")")
    return re.findall(r"[a-z0-9]+", s)


def grams(w, n=4):
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def sst_grams(path):
    out = set()
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            out |= grams(words(line.rsplit("\t", 1)[0]))
    return out


def snippets():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp,
             "vaderSentiment==3.3.2"],
            check=True,
        )
        sdist = next(Path(tmp).iterdir())
        with tarfile.open(sdist) as outer:
            inner = outer.extractfile(next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz")))
            with tarfile.open(fileobj=io.BytesIO(inner.read())) as t:
                m = next(m for m in t.getmembers() if m.name.endswith("movieReviewSnippets_GroundTruth.txt"))
                return t.extractfile(m).read().decode("utf-8").splitlines()


def main():
    sst = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sst2")
    seen = sst_grams(sst / "train.tsv") | sst_grams(sst / "dev.tsv")
    kept = []
    for line in snippets():
        if not line.strip():
            continue
        ident, rating, text = line.split("\t", 2)
        g = grams(words(text))
        if not g or float(rating) == 0.0:
            continue
        if len(g & seen) / len(g) < 0.5:
            kept.append(ident)
    print("\n".join(kept))


if __name__ == "__main__":
    main()
