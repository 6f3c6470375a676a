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


SENTIMENT_WORDS = ROOT / "corpora" / "sentiment-words.txt"
# Opinion lexicons from PyPI, each pinned by sha256, with its licence:
#   VADER (Hutto & Gilbert 2014; vaderSentiment, MIT): vader_lexicon.txt, every rated token
#   AFINN-en-165 (Nielsen 2011; afinn, data under ODbL 1.0): every word
#   Pattern's en-sentiment.xml (De Smedt & Daelemans 2012; in textblob, MIT): polarity != 0
# robust keeps those words out of universal triggers (Wallace et al. 2019 excluded sentiment words
# the same way). The list is committed and compiled into the binary, so an installed robust needs
# no setup; this rebuilds it byte for byte when it is missing (delete it and run setup to check:
# `git diff` then shows any change). See corpora/sentiment-words.README.md for the licences.
AFINN = ("afinn==0.1", "cf2f728ccc6f2974f2f27e2110e4c05a0133a2f14a40387c463a8c9fdd4ab61b")
TEXTBLOB = ("textblob==0.20.1", "f957699169a3e7b9a03a504883111b7b6973679496b9af959db2f74ee2449977")


def mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def checked(path, sha256):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"setup: {path.name} has sha256 {digest}, expected {sha256}")
    return path


def ensure_sentiment_words():
    """corpora/sentiment-words.txt: one lower-case word a line, the union of three opinion
    lexicons (see above); the default exclusion list for trigger searches on sentiment models."""
    if SENTIMENT_WORDS.exists():
        say(f"sentiment-word list present: {SENTIMENT_WORDS.relative_to(ROOT)}")
        return
    import re
    import xml.etree.ElementTree as ET
    words = {}
    word_re = re.compile(r"^[a-z][a-z'-]*$")

    def add(word, source):
        word = word.strip().lower()
        if word_re.match(word):
            words.setdefault(word, set()).add(source)

    say("fetching the VADER, AFINN and Pattern opinion lexicons from PyPI for the trigger exclusion list")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vader = checked(pip_download(VADER, mkdir(tmp / "vader"), sdist=True), VADER_SHA256)
        with tarfile.open(vader) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("vaderSentiment/vader_lexicon.txt"))
            for line in t.extractfile(member).read().decode("utf-8").splitlines():
                token, mean = line.split("\t")[:2]
                if float(mean) != 0.0:
                    add(token, "vader")
        afinn = checked(pip_download(AFINN[0], mkdir(tmp / "afinn"), sdist=True), AFINN[1])
        with tarfile.open(afinn) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("data/AFINN-en-165.txt"))
            for line in t.extractfile(member).read().decode("utf-8").splitlines():
                phrase, score = line.rsplit("\t", 1)
                if int(score) != 0 and " " not in phrase:
                    add(phrase, "afinn")
        textblob = checked(pip_download(TEXTBLOB[0], mkdir(tmp / "textblob")), TEXTBLOB[1])
        with zipfile.ZipFile(textblob) as z:
            root = ET.fromstring(z.read("textblob/en/en-sentiment.xml"))
            for w in root.iter("word"):
                if float(w.get("polarity", "0")) != 0.0 and " " not in w.get("form", " "):
                    add(w.get("form"), "pattern")
    lines = [f"# sentiment words for trigger exclusion: {len(words)} words from VADER (MIT), "
             "AFINN-en-165 (ODbL 1.0) and Pattern en-sentiment (MIT); built by scripts/setup"]
    lines += sorted(words)
    atomic_write(SENTIMENT_WORDS, ("\n".join(lines) + "\n").encode("utf-8"))
    say(f"sentiment-word list at {SENTIMENT_WORDS.relative_to(ROOT)}: {len(words)} words")


if __name__ == "__main__":
    ensure_runtime()
    ensure_corpus()
    ensure_split()
    ensure_sentiment_words()
