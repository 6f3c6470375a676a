"""Fetch the ONNX Runtime library and build the default corpus. See scripts/setup."""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORT_VERSION = "1.32.0"
ORT_DIR = ROOT / ".ort"
VADER = "vaderSentiment==3.3.2"
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
CORPUS = ROOT / "corpora" / "rt-snippets.tsv"
HELDOUT_IDS = ROOT / "corpora" / "rt-snippets-heldout.ids"


def say(msg):
    print(f"setup: {msg}", file=sys.stderr, flush=True)


def pip_download(spec, dest, sdist=False):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", str(dest)]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run(cmd + [spec], check=True)
    files = sorted(Path(dest).iterdir())
    if not files:
        sys.exit(f"setup: pip downloaded nothing for {spec}")
    return files[0]


def atomic_write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def ensure_runtime():
    link = ORT_DIR / "libonnxruntime.so"
    if link.exists():
        say(f"onnx runtime present: {link.resolve().name}")
        return
    say(f"fetching onnxruntime=={ORT_VERSION} wheel from PyPI for its C library")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = pip_download(f"onnxruntime=={ORT_VERSION}", tmp)
        with zipfile.ZipFile(wheel) as z:
            members = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
            if not members:
                sys.exit(f"setup: {wheel.name} has no onnxruntime/capi/libonnxruntime.so*")
            name = Path(sorted(members)[-1]).name
            atomic_write(ORT_DIR / name, z.read(sorted(members)[-1]))
    tmp_link = ORT_DIR / ".libonnxruntime.so.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(name)
    os.replace(tmp_link, link)
    say(f"onnx runtime at {link} -> {name}")


def ensure_corpus():
    """The Rotten Tomatoes snippets (Hutto & Gilbert 2014, human-rated -4..4) that SST was built
    from, minus every sentence that also appears in SST-2 train or dev (the ids in
    corpora/rt-snippets-heldout.ids), so the default model is not scored on its training data."""
    if CORPUS.exists():
        say(f"default corpus present: {CORPUS.relative_to(ROOT)}")
        return
    keep = set(HELDOUT_IDS.read_text().split())
    say(f"fetching {VADER} source archive from PyPI for the Rotten Tomatoes snippets")
    with tempfile.TemporaryDirectory() as tmp:
        sdist = pip_download(VADER, tmp, sdist=True)
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != VADER_SHA256:
            sys.exit(f"setup: {sdist.name} has sha256 {digest}, expected {VADER_SHA256}")
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            inner = outer.extractfile(inner_member).read()
        with tarfile.open(fileobj=io.BytesIO(inner)) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("movieReviewSnippets_GroundTruth.txt"))
            raw = t.extractfile(member).read().decode("utf-8")
    out = ["text\tlabel\tid\trating"]
    for line in raw.splitlines():
        if not line.strip():
            continue
        ident, rating, text = line.split("\t", 2)
        if ident not in keep:
            continue
        score = float(rating)
        text = " ".join(text.replace("''", '"').split())
        out.append(f"{text}\t{'positive' if score > 0 else 'negative'}\t{ident}\t{rating}")
    atomic_write(CORPUS, ("\n".join(out) + "\n").encode("utf-8"))
    say(f"default corpus at {CORPUS.relative_to(ROOT)}: {len(out) - 1} sentences")


SPLIT = {
    "search": ROOT / "corpora" / "rt-snippets-search.tsv",
    "eval": ROOT / "corpora" / "rt-snippets-eval.tsv",
}


def ensure_split():
    """Two disjoint halves of the default corpus for the nightly trigger job: the trigger is
    searched on one and evaluated on the other, so a universal trigger is not scored on the
    sentences it was fitted to. A row's half is fixed by sha256("13:" + id), so the split is the
    same on every machine and Python version."""
    if all(p.exists() for p in SPLIT.values()):
        say("trigger split present: corpora/rt-snippets-{search,eval}.tsv")
        return
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    id_col = header.split("\t").index("id")
    halves = {"search": [header], "eval": [header]}
    for row in rows:
        ident = row.split("\t")[id_col]
        bit = int(hashlib.sha256(f"13:{ident}".encode()).hexdigest(), 16) % 2
        halves["search" if bit == 0 else "eval"].append(row)
    for name, path in SPLIT.items():
        atomic_write(path, ("\n".join(halves[name]) + "\n").encode("utf-8"))
    say(f"trigger split: {len(halves['search']) - 1} search, {len(halves['eval']) - 1} eval sentences")


if __name__ == "__main__":
    ensure_runtime()
    ensure_corpus()
    ensure_split()
