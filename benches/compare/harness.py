#!/usr/bin/env python3
"""Side-by-side timing of robust and the Python stack (run through benches/compare/run).

Workloads, each on the same model, corpus, batch size and ONNX Runtime thread count:

  infer    robust eval                       vs reference.py infer (onnxruntime + tokenizers),
                                                file order and length-sorted, and a transformers
                                                pipeline where torch + transformers import
  shuffle  robust attack --kind shuffle      vs reference.py shuffle (same perturbation, same
                                                read/perturb/tokenize/infer/score/write CSV),
                                                and vs reference.py textattack (TextAttack's
                                                Augmenter + batch_model_predict, same session)
                                                where textattack imports
  typo     robust attack --kind typo         vs TextAttack's DeepWordBugGao2018 recipe
  synonym  robust attack --kind synonym      vs TextAttack's PWWSRen2019 recipe (word_attacks.py:
                                                the recipes unchanged, on the same model.onnx through
                                                onnxruntime), both on the first --word-limit rows of
                                                the corpus with the same stop words and WordNet:
                                                attack success rate, accuracy under attack, words
                                                perturbed, queries per example, model rows, wall
                                                time and ms per model row (beside robust eval's on
                                                the same rows), and pass/fail checks of robust
                                                against TextAttack (the TextAttack side needs a
                                                python with textattack, as shuffle's does)
  trigger  robust attack --kind trigger      queries per second, and the time until the trigger
                                                found so far brings source-class accuracy on the
                                                evaluation corpus down to --trigger-accept
  trigger-exact
           robust attack --kind trigger --gradient-trace vs trigger_exact.py search: the same search
                                                from the trace's setup (examples, validation batch,
                                                pool order, allowed tokens, init, config, budget)
                                                with the exact gradient (PyTorch autodiff on the
                                                weights of model.onnx) instead of robust's
                                                finite-difference estimate; per iteration model
                                                rows, seconds and source-class accuracy on the
                                                recipe's evaluation corpus for both sides, and the
                                                cosine between robust's estimate and the exact
                                                gradient at every step of robust's search
                                                (needs a python with torch + transformers + onnx:
                                                --exact-python / EXACT_PYTHON)
  limit    sgemm GFLOP/s on the same threads (numpy's OpenBLAS and ONNX Runtime's own MatMul),
           the model's FLOPs per sentence from the ONNX graph at the corpus's token lengths, and
           the share of the limit robust reaches at each batch size of a sweep

Every run is a separate process: wall time is what a user waits for, peak RSS comes from the
kernel (wait4's ru_maxrss of that process). Sides alternate within each repeat and which side
goes first alternates between repeats, so a burst of load from someone else lands on both; the
table gives medians and the load average the machine showed during the runs.
"""

import argparse
import csv
import datetime
import json
import os
import shlex
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PY = sys.executable
REFERENCE = str(HERE / "reference.py")
TRIGGER_EXACT = str(HERE / "trigger_exact.py")
WORD_ATTACKS_PY = str(HERE / "word_attacks.py")

# robust's word-attack kinds and the TextAttack recipe each is measured against.
WORD_ATTACKS = {
    "typo": ("deepwordbug", "DeepWordBugGao2018"),
    "synonym": ("pwws", "PWWSRen2019"),
}
# The rows (group `all`) robust's summary.csv must have for a word attack.
ROBUST_WORD_METRICS = ("attack_success_rate", "accuracy_under_attack", "words_perturbed", "queries_mean",
                       "queries_median", "attacks_succeeded", "attacks_failed", "attacks_skipped", "queries")
# The pass/fail checks of robust against TextAttack (see word_checks).
WORD_CHECK_POINTS = {"success_points": 3.0, "perturbed_points": 2.0, "eval_ms_factor": 1.25, "wall_factor": 1.5}


def read_robust_word_summary(path):
    """robust's summary.csv rows of group `all`, by metric: {value, k, n}; a clear error when a
    metric the word-attack table needs is missing."""
    if not Path(path).exists():
        raise SystemExit(f"robust wrote no {path}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("group") == "all"]
    by = {}
    for r in rows:
        by.setdefault(r["metric"], r)
    missing = [m for m in ROBUST_WORD_METRICS if m not in by]
    if missing:
        raise SystemExit(f"{path}: no {', '.join(missing)} row{'s' if len(missing) > 1 else ''} in group `all` "
                         f"(the word-attack workloads read {', '.join(ROBUST_WORD_METRICS)}; found "
                         f"{', '.join(by) or 'none'})")

    def num(x):
        return float(x) if x not in (None, "") else None

    out = {m: {"value": num(r.get("value")), "k": num(r.get("k")), "n": num(r.get("n"))} for m, r in by.items()}
    for m in ROBUST_WORD_METRICS:
        if out[m]["value"] is None:
            raise SystemExit(f"{path}: metric {m} (group all) has no value")
    return out


def measure(cmd, env=None, stdout_path=None):
    """Run `cmd`; wall seconds, peak RSS (MiB), stdout, stderr and load averages around it."""
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})}, cwd=REPO)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{stderr[-3000:]}")
    return {
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "stdout": stdout,
        "stderr": stderr,
        "load1": (load_before + os.getloadavg()[0]) / 2,
    }


def last_json(text):
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


class Harness:
    def __init__(self, a):
        self.a = a
        self.robust = str(Path(a.robust).resolve())
        # Other robust builds run interleaved with this one, for before/after figures.
        # "NAME=PATH [GLOBAL FLAGS]", e.g. "full-graph=target/release/robust --full-graph".
        self.others = [(name, [str(Path(cmd.split()[0]).resolve()), *cmd.split()[1:]])
                       for name, cmd in (x.split("=", 1) for x in a.also)]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = Path(a.out).resolve() / stamp
        self.out.mkdir(parents=True, exist_ok=True)
        self.rows = []  # one per process run
        self.corpus = str(Path(a.corpus).resolve())
        if a.limit:
            self.corpus = self.limited_corpus(a.limit)
        self.shuffle_corpus = self.limited_corpus(a.shuffle_limit) if a.shuffle_limit else self.corpus
        # The word attacks read the whole corpus file with --limit (both sides take its first rows).
        self.word_corpus = str(Path(a.corpus).resolve())
        self.common = ["--threads", str(a.threads), "--batch-size", str(a.batch_size)]
        self.py_common = ["--model", a.model, "--corpus", self.corpus, "--threads", str(a.threads),
                          "--batch-size", str(a.batch_size)]

    def limited_corpus(self, n):
        lines = Path(self.a.corpus).read_text(encoding="utf-8").splitlines(keepends=True)
        path = self.out / f"corpus-first-{n}.tsv"
        path.write_text("".join(lines[: n + 1]), encoding="utf-8")
        return str(path)

    def record(self, workload, side, r, extra=None):
        row = {"workload": workload, "side": side, "wall_s": r["wall_s"],
               "peak_rss_mib": r["peak_rss_mib"], "cpu_s": r["cpu_s"], "load1": r["load1"],
               **(extra or {})}
        self.rows.append(row)
        print(f"  {workload:8} {side:28} wall {r['wall_s']:7.2f} s  work {row.get('work_s', float('nan')):7.2f} s"
              f"  peak {r['peak_rss_mib']:6.0f} MiB  load {r['load1']:.1f}", flush=True)
        return row

    # --- one process each --------------------------------------------------------------

    def robust_eval(self, batch_size=None, side="robust", binary=None):
        common = ["--threads", str(self.a.threads), "--batch-size", str(batch_size or self.a.batch_size)]
        r = measure([*(binary or [self.robust]), *common, "eval", "--model", self.a.model, "--corpus", self.corpus,
                     "--format", "json", "-q"])
        j = json.loads(r["stdout"])
        q = j["queries"]
        return self.record("infer", side, r, {
            "work_s": j["wall_seconds"], "correct": j["accuracy"]["k"], "n": j["n"],
            "batch_size": batch_size or self.a.batch_size,
            "real_tokens": q["real_tokens"], "padded_tokens": q["padded_tokens"]})

    def python_infer(self, order):
        r = measure([PY, REFERENCE, "infer", *self.py_common, "--order", order])
        j = last_json(r["stdout"])
        return self.record("infer", f"python-ort ({order} order)", r, {
            "work_s": j["work_s"], "correct": j["correct"], "n": j["n"],
            "real_tokens": j["real_tokens"], "padded_tokens": j["padded_tokens"]})

    def pipeline(self):
        py = self.a.pipeline_python
        if not py or not Path(py).exists():
            return None
        probe = subprocess.run([py, "-c", "import torch, transformers, onnx"], capture_output=True)
        if probe.returncode != 0:
            print(f"  pipeline: skipped ({py} lacks torch/transformers/onnx)")
            return None
        r = measure([py, REFERENCE, "pipeline", *self.py_common, "--weights", str(self.out / "torch-weights")])
        j = last_json(r["stdout"])
        if "error" in j:
            print(f"  pipeline: {j['error']}")
            return None
        return self.record("infer", "transformers pipeline (torch)", r, {
            "work_s": j["work_s"], "correct": j["correct"], "n": j["n"],
            "max_logit_diff": j.get("max_logit_diff")})

    def robust_shuffle(self, rep, side="robust", binary=None):
        out = self.out / f"{side.replace(' ', '-')}-shuffle-{rep}"
        r = measure([*(binary or [self.robust]), *self.common, "--seed", str(self.a.seed), "attack", "--kind", "shuffle",
                     "--model", self.a.model, "--corpus", self.shuffle_corpus, "--samples", str(self.a.samples),
                     "--out", str(out), "--format", "json", "-q"])
        j = json.loads(r["stdout"])
        q = j["model_stats"]
        return self.record("shuffle", side, r, {
            "work_s": j["wall_seconds"], "rows": q["requests"], "model_queries": q["model_queries"],
            "cache_hits": q["cache_hits"], "real_tokens": q["real_tokens"], "padded_tokens": q["padded_tokens"]})

    def python_shuffle(self, order, rep):
        out = self.out / f"python-shuffle-{order}-{rep}"
        common = [*self.py_common]
        common[common.index("--corpus") + 1] = self.shuffle_corpus
        r = measure([PY, REFERENCE, "shuffle", *common, "--order", order, "--samples",
                     str(self.a.samples), "--seed", str(self.a.seed), "--out", str(out)])
        j = last_json(r["stdout"])
        return self.record("shuffle", f"python-ort ({order} order)", r, {
            "work_s": j["work_s"], "rows": j["rows"], "model_queries": j["rows"],
            "real_tokens": j["real_tokens"], "padded_tokens": j["padded_tokens"],
            "flips": j["flips"], "variants": j["variants"]})

    def textattack_shuffle(self, rep):
        py = self.a.textattack_python
        out = self.out / f"textattack-shuffle-{rep}"
        common = [*self.py_common]
        common[common.index("--corpus") + 1] = self.shuffle_corpus
        r = measure([py, REFERENCE, "textattack", *common, "--samples", str(self.a.samples),
                     "--seed", str(self.a.seed), "--out", str(out)])
        j = last_json(r["stdout"])
        if "error" in j:
            print(f"  textattack: {j['error']}")
            self.a.textattack_python = None
            return None
        return self.record("shuffle", f"textattack {j['textattack']} (file order)", r, {
            "work_s": j["work_s"], "rows": j["rows"], "model_queries": j["rows"],
            "real_tokens": j["real_tokens"], "padded_tokens": j["padded_tokens"],
            "flips": j["flips"], "variants": j["variants"], "perturb_s": j["perturb_s"]})

    def textattack_usable(self):
        py = self.a.textattack_python
        if not py or self.a.no_python or self.a.no_textattack:
            return False
        if not Path(py).exists() or subprocess.run([py, "-c", "import textattack"], capture_output=True).returncode:
            print(f"  textattack: skipped ({py} cannot import textattack)")
            self.a.textattack_python = None
            return False
        return True

    def robust_word_attack(self, kind, rep, side="robust", binary=None):
        a = self.a
        out = self.out / f"{side.replace(' ', '-')}-{kind}-{rep}"
        r = measure([*(binary or [self.robust]), *self.common, "--seed", str(a.seed), "attack", "--kind", kind,
                     "--model", a.model, "--corpus", self.word_corpus, "--limit", str(a.word_limit),
                     "--stop-words", a.stop_words, "--out", str(out),
                     # PWWS takes the synonyms of every part of speech (WordSwapWordNet), from
                     # the WordNet NLTK reads; typo reads no WordNet.
                     *(["--wordnet", a.wordnet, "--synonym-pos", "any"] if kind == "synonym" else []),
                     "--format", "json", "-q"])
        try:
            j = json.loads(r["stdout"])
            q = j["model_stats"]
            work, rows = j["wall_seconds"], q["model_queries"]
        except (ValueError, KeyError) as e:
            raise SystemExit(f"robust attack --kind {kind} --format json: no model_stats.model_queries / "
                             f"wall_seconds in its output ({e!r}): {r['stdout'][:300]!r}")
        m = read_robust_word_summary(out / "summary.csv")
        return self.record(kind, side, r, {
            "limit": a.word_limit, "work_s": work, "model_queries": rows, "batches": q.get("batches"),
            "requests": q.get("requests"), "cache_hits": q.get("cache_hits"),
            "real_tokens": q.get("real_tokens"), "padded_tokens": q.get("padded_tokens"),
            "ms_per_model_row": 1000 * work / max(rows, 1),
            "attack_success_rate": m["attack_success_rate"]["value"],
            "accuracy_under_attack": m["accuracy_under_attack"]["value"],
            "words_perturbed_pct": 100 * m["words_perturbed"]["value"],
            "queries_mean": m["queries_mean"]["value"], "queries_median": m["queries_median"]["value"],
            "succeeded": m["attacks_succeeded"]["value"], "failed": m["attacks_failed"]["value"],
            "skipped": m["attacks_skipped"]["value"], "queries_total": m["queries"]["value"]})

    def robust_word_eval(self, kind):
        """robust eval on the word attack's rows: its ms per model row, the yardstick for the attack's."""
        a = self.a
        r = measure([self.robust, *self.common, "eval", "--model", a.model, "--corpus", self.word_corpus,
                     "--limit", str(a.word_limit), "--format", "json", "-q"])
        j = json.loads(r["stdout"])
        q = j["queries"]
        rows = q.get("model_queries", j["n"])
        return self.record(kind, "robust eval", r, {
            "limit": a.word_limit, "work_s": j["wall_seconds"], "model_queries": rows, "n": j["n"],
            "batches": q.get("batches"), "real_tokens": q.get("real_tokens"), "padded_tokens": q.get("padded_tokens"),
            "ms_per_model_row": 1000 * j["wall_seconds"] / max(rows, 1)})

    def textattack_word_attack(self, kind, rep):
        a = self.a
        recipe = WORD_ATTACKS[kind][0]
        out = self.out / f"textattack-{kind}-{rep}"
        r = measure([a.textattack_python, WORD_ATTACKS_PY, "--recipe", recipe, "--model", a.model,
                     "--corpus", self.word_corpus, "--limit", str(a.word_limit), "--seed", str(a.seed),
                     "--threads", str(a.threads), "--batch-size", str(a.batch_size), "--stop-words", a.stop_words,
                     "--examples", str(out / "examples.csv"), "--out", str(out / "result.json")])
        j = last_json(r["stdout"])
        return self.record(kind, f"textattack {j['textattack']} {j['recipe']}", r, {
            "limit": a.word_limit, "work_s": j["wall_seconds"], "model_queries": j["model_rows"],
            "batches": j["batches"], "real_tokens": j["real_tokens"], "padded_tokens": j["padded_tokens"],
            "ms_per_model_row": j["ms_per_model_row"], "model_ms_per_row": j["model_ms_per_row"],
            "attack_success_rate": j["attack_success_rate"], "accuracy_under_attack": j["accuracy_under_attack"],
            "words_perturbed_pct": j["words_perturbed_mean_pct"], "queries_mean": j["queries_mean"],
            "queries_median": j["queries_median"], "succeeded": j["succeeded"], "failed": j["failed"],
            "skipped": j["skipped"], "queries_total": j["queries_total"], "load_s": j["load_seconds"]})

    # --- the workloads -----------------------------------------------------------------

    def infer(self):
        print("infer: robust eval vs Python onnxruntime + tokenizers", flush=True)
        for rep in range(self.a.repeats):
            sides = [self.robust_eval]
            if not self.a.no_python:
                sides += [lambda: self.python_infer("file"), lambda: self.python_infer("length")]
            for name, path in self.others:
                sides.insert(1, lambda name=name, path=path: self.robust_eval(side=f"robust ({name})", binary=path))
            if rep % 2:
                sides.reverse()
            for side in sides:
                side()
        if self.a.pipeline_python and not self.a.no_python:
            for _ in range(self.a.pipeline_repeats):
                if self.pipeline() is None:
                    break

    def shuffle(self):
        print(f"shuffle: {self.a.samples} permutations per sentence, end to end", flush=True)
        for rep in range(self.a.repeats):
            sides = [lambda: self.robust_shuffle(rep)]
            if not self.a.no_python:
                sides.append(lambda: self.python_shuffle("file", rep))
            for name, path in self.others:
                sides.insert(1, lambda name=name, path=path: self.robust_shuffle(rep, f"robust ({name})", path))
            if self.a.shuffle_sorted and not self.a.no_python:
                sides.append(lambda: self.python_shuffle("length", rep))
            if rep < self.a.textattack_repeats and self.textattack_usable():
                sides.append(lambda: self.textattack_shuffle(rep))
            if rep % 2:
                sides.reverse()
            for side in sides:
                side()

    def word_attack(self, kind):
        a = self.a
        recipe = WORD_ATTACKS[kind][1]
        wordnet = Path(a.wordnet)
        if not ((wordnet / "data.noun").exists() and (wordnet / "index.sense").exists()):
            if kind == "synonym":
                raise SystemExit(f"{kind}: no WordNet 3.0 in {wordnet} (data.noun, index.sense): "
                                 f"apt-get install wordnet-base wordnet-sense-index, or --wordnet DIR")
        if not Path(a.stop_words).exists():
            raise SystemExit(f"{kind}: no stop-word list {a.stop_words}")
        print(f"{kind}: robust attack --kind {kind} vs TextAttack {recipe}, first {a.word_limit} rows of "
              f"{Path(self.word_corpus).name}", flush=True)
        for rep in range(a.repeats):
            sides = [lambda: self.robust_word_attack(kind, rep)]
            for name, path in self.others:
                sides.append(lambda name=name, path=path: self.robust_word_attack(kind, rep, f"robust ({name})", path))
            sides.append(lambda: self.robust_word_eval(kind))
            if rep < a.textattack_repeats and self.textattack_usable():
                sides.append(lambda: self.textattack_word_attack(kind, rep))
            if rep % 2:
                sides.reverse()
            for side in sides:
                side()
        for c in self.word_checks(kind):
            print(f"  {c['verdict']:7} {c['check']}: {c['detail']}", flush=True)

    def word_sides(self, kind):
        sides = []
        for r in self.rows:
            if r["workload"] == kind and r["side"] not in sides:
                sides.append(r["side"])
        return sides

    def word_checks(self, kind):
        """robust against TextAttack on one word attack: each check's verdict (PASS, FAIL, or
        'not run' when a side is missing) and the figures behind it."""
        P = WORD_CHECK_POINTS
        ta = next((s for s in self.word_sides(kind) if s.startswith("textattack")), None)
        rob = lambda key: self.med(kind, "robust", key)  # noqa: E731
        tam = lambda key: self.med(kind, ta, key) if ta else None  # noqa: E731
        checks = []

        def check(name, ok, detail):
            checks.append({"check": name, "verdict": "not run" if ok is None else "PASS" if ok else "FAIL",
                           "detail": detail})

        ra, ta_a = rob("attack_success_rate"), tam("attack_success_rate")
        if ra is None or ta_a is None:
            check(f"attack success rate within {P['success_points']:g} points of TextAttack's or higher", None,
                  "needs both sides")
        else:
            check(f"attack success rate within {P['success_points']:g} points of TextAttack's or higher",
                  100 * ra >= 100 * ta_a - P["success_points"] - 1e-9,
                  f"robust {100 * ra:.1f}%, TextAttack {100 * ta_a:.1f}% ({100 * (ra - ta_a):+.1f} points)")
        rw, tw = rob("words_perturbed_pct"), tam("words_perturbed_pct")
        name = f"words perturbed within {P['perturbed_points']:g} points of TextAttack's"
        if rw is None or tw is None:
            check(name, None, "needs both sides")
        else:
            check(name, abs(rw - tw) <= P["perturbed_points"] + 1e-9,
                  f"robust {rw:.1f}%, TextAttack {tw:.1f}% ({rw - tw:+.1f} points)")
        rq, tq = rob("queries_mean"), tam("queries_mean")
        if rq is None or tq is None:
            check("queries per example no more than TextAttack's", None, "needs both sides")
        else:
            check("queries per example no more than TextAttack's", rq <= tq + 1e-9,
                  f"robust {rq:.1f}, TextAttack {tq:.1f} (mean over attacked rows)")
        rm, em = rob("ms_per_model_row"), self.med(kind, "robust eval", "ms_per_model_row")
        name = f"robust's ms per model row within {P['eval_ms_factor']:g}× robust eval's on the same rows"
        if rm is None or em is None:
            check(name, None, "needs robust's attack and eval")
        else:
            check(name, rm <= P["eval_ms_factor"] * em + 1e-12,
                  f"attack {rm:.2f} ms/row, eval {em:.2f} ms/row ({rm / em:.2f}×)")
        rwall, twall = rob("wall_s"), tam("wall_s")
        name = f"wall time at least {P['wall_factor']:g}× shorter than TextAttack's"
        if rwall is None or twall is None:
            check(name, None, "needs both sides")
        else:
            check(name, twall >= P["wall_factor"] * rwall,
                  f"robust {rwall:.1f} s, TextAttack {twall:.1f} s (whole processes; {twall / rwall:.1f}× shorter)")
        return checks

    def word_attack_lines(self, kind):
        """summary.md section for one word attack."""
        sides = self.word_sides(kind)
        if "robust" not in sides:
            return []
        ta = next((s for s in sides if s.startswith("textattack")), None)
        limit = self.med(kind, "robust", "limit")
        recipe = WORD_ATTACKS[kind][1]
        lines = [f"## Word attack `{kind}`: robust vs TextAttack {recipe}", "",
                 f"First {limit:.0f} rows of `{Path(getattr(self, 'word_corpus', self.corpus)).name}`, seed {self.a.seed}, "
                 f"stop words `{Path(self.a.stop_words).name}` on both sides"
                 f"{', WordNet ' + self.a.wordnet if kind == 'synonym' else ''}. Success rate = succeeded / "
                 f"(succeeded + failed); accuracy under attack = failed / all rows; words perturbed = mean share of "
                 f"an example's words changed, over successful attacks; queries = each side's own count per "
                 f"attacked (not skipped) row; model rows = rows the model actually ran; wall = whole process "
                 f"(TextAttack's includes importing textattack and torch), work = the program's own timer; "
                 f"ms per model row = work / model rows. "
                 f"{'Medians of the robust runs; ' if self.a.repeats > 1 else ''}"
                 f"{'no TextAttack side in this run (--no-textattack, or no textattack python).' if not ta else ''}", ""]
        cols = [s for s in sides if s != "robust eval"]
        lines += ["| | " + " | ".join(cols) + (" | robust / TextAttack |" if ta else " |"),
                  "| --- | " + " | ".join("---:" for _ in cols) + (" | ---: |" if ta else " |")]

        def fmt(v, kind_):
            if v is None:
                return ""
            return {"pct": f"{100 * v:.1f}%", "pct100": f"{v:.1f}%", "f1": f"{v:.1f}", "f2": f"{v:.2f}",
                    "int": f"{v:,.0f}"}[kind_]

        for label, key, f in (("attack success rate", "attack_success_rate", "pct"),
                              ("accuracy under attack", "accuracy_under_attack", "pct"),
                              ("words perturbed", "words_perturbed_pct", "pct100"),
                              ("queries / example, mean", "queries_mean", "f1"),
                              ("queries / example, median", "queries_median", "f1"),
                              ("succeeded / failed / skipped", None, None),
                              ("model rows", "model_queries", "int"),
                              ("batches", "batches", "int"),
                              ("wall s", "wall_s", "f1"),
                              ("work s", "work_s", "f2"),
                              ("ms per model row", "ms_per_model_row", "f2"),
                              ("peak RSS MiB", "peak_rss_mib", "int")):
            if key is None:
                cells = []
                for s in cols:
                    v = [self.med(kind, s, k) for k in ("succeeded", "failed", "skipped")]
                    cells.append(" / ".join(f"{x:.0f}" for x in v) if None not in v else "")
                lines.append(f"| {label} | " + " | ".join(cells) + (" | |" if ta else " |"))
                continue
            vals = [self.med(kind, s, key) for s in cols]
            ratio = ""
            if ta:
                rv, tv = self.med(kind, "robust", key), self.med(kind, ta, key)
                ratio = f"{rv / tv:.2f}×" if rv is not None and tv else ""
            lines.append(f"| {label} | " + " | ".join(fmt(v, f) for v in vals) + (f" | {ratio} |" if ta else " |"))
        em = self.med(kind, "robust eval", "ms_per_model_row")
        if em is not None:
            lines += ["", f"robust eval on the same {limit:.0f} rows: {em:.2f} ms per model row "
                          f"({self.med(kind, 'robust eval', 'work_s'):.2f} s for "
                          f"{self.med(kind, 'robust eval', 'model_queries'):.0f} rows, batch {self.a.batch_size})."]
        lines += ["", "| must hold | verdict | figures |", "| --- | --- | --- |"]
        for c in self.word_checks(kind):
            lines.append(f"| {c['check']} | **{c['verdict']}** | {c['detail']} |")
        lines.append("")
        return lines

    def sweep(self):
        print("batch-size sweep (robust eval)", flush=True)
        for rep in range(self.a.sweep_repeats):
            for b in self.a.sweep:
                self.robust_eval(batch_size=b, side=f"robust batch {b}")

    def matmul(self):
        print(f"matmul limit on {self.a.threads} threads", flush=True)
        env = {k: str(self.a.threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        sizes = ",".join(self.a.matmul_sizes)
        r = measure([PY, REFERENCE, "matmul", "--sizes", sizes, "--threads", str(self.a.threads)], env=env)
        self.matmul_result = last_json(r["stdout"])
        self.matmul_result["load1"] = r["load1"]
        for res in self.matmul_result["results"]:
            print(f"  {res['engine']:28} {res['m']}x{res['k']}x{res['n']}: {res['gflops']:.1f} GFLOP/s", flush=True)

    def trigger(self):
        print("trigger search (robust)", flush=True)
        out = self.out / "robust-trigger"
        cmd = [self.robust, *self.common, "attack", "--recipe", self.a.trigger_recipe, "--corpus", self.corpus,
               "--out", str(out), "--format", "json", "--random-baselines", "1"]
        if self.a.trigger_iterations:
            cmd += ["--iterations", str(self.a.trigger_iterations)]
        r = measure(cmd)
        tj = json.loads((out / "trigger.json").read_text())
        res = tj["trigger"]
        its = [{k: p[k] for k in ("iteration", "trigger", "validation_loss", "queries", "seconds")}
               for p in res["curve"]]
        # Source-class accuracy on the evaluation corpus with each distinct trigger in front.
        source = self.a.trigger_source_label
        rows = list(csv.DictReader(open(self.corpus, encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
        text_col = "sentence" if "sentence" in rows[0] else "text"
        texts = [row[text_col] for row in rows if row["label"] == source]
        accs = {}
        for it in its:
            if it["trigger"] in accs:
                continue
            path = self.out / "trigger-eval.tsv"
            with open(path, "w", encoding="utf-8") as f:
                f.write("sentence\tlabel\n")
                for text in texts:
                    f.write(f"{it['trigger']} {text}\t{source}\n")
            e = measure([self.robust, *self.common, "eval", "--model", self.a.model, "--corpus", str(path),
                         "--format", "json", "-q"])
            accs[it["trigger"]] = json.loads(e["stdout"])["accuracy"]["value"]
        for it in its:
            it["source_accuracy"] = accs[it["trigger"]]
        reached = next((it for it in its if it["source_accuracy"] <= self.a.trigger_accept), None)
        self.trigger_result = {
            "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
            "search_seconds": res["seconds"], "search_queries": res["queries"],
            "queries_per_s": res["queries"] / max(res["seconds"], 1e-9), "trigger": res["text"],
            "iterations": its, "accept": self.a.trigger_accept,
            "reached": reached,
        }
        self.rows.append({"workload": "trigger", "side": "robust", "wall_s": r["wall_s"],
                          "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
                          "work_s": res["seconds"], "model_queries": res["queries"]})
        print(f"  search {res['seconds']:.0f} s, {res['queries']} queries "
              f"({self.trigger_result['queries_per_s']:.0f}/s), peak {r['peak_rss_mib']:.0f} MiB", flush=True)
        for it in its:
            print(f"    it {it['iteration']:2} {it['seconds']:5.0f} s {it['queries']:7} q  {it['trigger']!r:40} "
                  f"source accuracy {it['source_accuracy']:.3f}", flush=True)

    def trigger_exact(self):
        """robust's finite-difference trigger search beside the same search with exact gradients."""
        import tomllib

        a = self.a
        py = a.exact_python
        if not py or not Path(py).exists():
            print(f"trigger-exact: skipped (no python with torch; set EXACT_PYTHON or --exact-python)")
            return
        probe = subprocess.run([py, "-c", "import torch, transformers, onnx, onnxruntime, tokenizers"],
                               capture_output=True)
        if probe.returncode != 0:
            print(f"trigger-exact: skipped ({py} lacks torch/transformers/onnx/onnxruntime/tokenizers)")
            return
        recipe = tomllib.loads(Path(REPO / a.trigger_exact_recipe).read_text())
        corpus = a.trigger_exact_corpus or recipe["corpus"]
        source = recipe.get("source")
        if source is None:
            raise SystemExit(f"{a.trigger_exact_recipe}: trigger-exact needs a recipe with a source label")
        limit = recipe.get("limit") if not a.trigger_exact_corpus else None
        print(f"trigger-exact: {a.trigger_exact_recipe}, evaluated on {corpus}"
              f"{f' (first {limit} rows)' if limit else ''}, exact side {py}", flush=True)
        runs = []
        trace = None
        for rep in range(a.trigger_exact_repeats):
            d = self.out / f"trigger-exact-{rep}"
            d.mkdir(exist_ok=True)
            run = {"rep": rep}

            def robust_side(d=d, run=run):
                nonlocal trace
                out = d / "robust"
                # --seed picks the search examples, validation batch and directions; the exact
                # side replays robust's set-up from the trace, so one seed drives both sides.
                cmd = [self.robust, *self.common, "--seed", str(a.seed), "attack", "--recipe",
                       a.trigger_exact_recipe, "--out", str(out), "--format", "json", "--random-baselines", "1",
                       "--gradient-trace", str(d / "trace.jsonl")]
                budget = a.trigger_exact_robust_budget or a.trigger_exact_budget
                if budget:
                    cmd += ["--budget-queries", str(budget)]
                if a.trigger_exact_iterations:
                    cmd += ["--iterations", str(a.trigger_exact_iterations)]
                cmd += shlex.split(a.trigger_exact_robust_args or "")
                r = measure(cmd)
                trace = d / "trace.jsonl"
                tj = json.loads((out / "trigger.json").read_text())["trigger"]
                its = []
                for line in trace.read_text().splitlines():
                    rec = json.loads(line)
                    if rec.get("type") == "iteration":
                        its.append({k: rec[k] for k in ("iteration", "trigger", "text", "batch_loss",
                                                        "validation_loss", "queries", "seconds")})
                setup_line = json.loads(trace.read_text().splitlines()[0])
                run["robust"] = {"budget": setup_line["config"].get("max_queries"), "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
                                 "search_seconds": tj["seconds"], "queries": tj["queries"], "text": tj["text"],
                                 "validation_loss": tj["validation_loss"], "curve": its}
                self.rows.append({"workload": "trigger-exact", "side": "robust (finite differences)",
                                  "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
                                  "work_s": tj["seconds"], "model_queries": tj["queries"]})
                print(f"  robust: search {tj['seconds']:.1f} s, {tj['queries']} rows, {len(its)} iterations, "
                      f"trigger {tj['text']!r}, load {r['load1']:.1f}", flush=True)

            def exact_side(d=d, run=run):
                cmd = [py, TRIGGER_EXACT, "search", str(trace), "--threads", str(a.threads),
                       "--batch-size", str(a.batch_size), "--forward", a.trigger_exact_forward,
                       "--out", str(d / "exact.json")]
                if a.trigger_exact_robust_budget:
                    # robust ran on its own budget: the exact side keeps the recipe's (or --trigger-exact-budget)
                    cmd += ["--max-queries", str(a.trigger_exact_budget or recipe.get("budget_queries", 300_000))]
                r = measure(cmd)
                x = json.loads((d / "exact.json").read_text())
                run["exact"] = {"wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
                                "search_seconds": x["seconds"], "queries": x["queries"], "text": x["text"],
                                "validation_loss": x["validation_loss"], "verify": x["verify"],
                                "forward": x["forward"], "init_text": x["init_text"],
                                "initial_validation_loss": x["initial_validation_loss"], "budget": x["max_queries"],
                                "curve": [{k: p[k] for k in ("iteration", "trigger", "text", "batch_loss",
                                                             "validation_loss", "queries", "seconds",
                                                             "gradient_seconds")} for p in x["curve"]]}
                self.rows.append({"workload": "trigger-exact", "side": "exact gradient (torch)",
                                  "wall_s": r["wall_s"], "peak_rss_mib": r["peak_rss_mib"], "load1": r["load1"],
                                  "work_s": x["seconds"], "model_queries": x["queries"]})
                print(f"  exact:  search {x['seconds']:.1f} s, {x['queries']} rows, {len(x['curve'])} iterations, "
                      f"trigger {x['text']!r}, load {r['load1']:.1f}", flush=True)

            # The exact side needs a trace; after the first repeat, alternate which side goes first.
            sides = [robust_side, exact_side]
            if rep % 2 and trace is not None:
                sides.reverse()
            for side in sides:
                side()
            runs.append(run)
        # The same loop fed robust's own estimates must retrace robust's search (triggers, rows,
        # validation losses): the check that the exact side differs only in its gradient.
        replay = None
        if a.trigger_exact_replay:
            measure([py, TRIGGER_EXACT, "search", str(trace), "--replay", "--threads", str(a.threads),
                     "--batch-size", str(a.batch_size), "--out", str(self.out / "trigger-exact-replay.json")])
            rp = json.loads((self.out / "trigger-exact-replay.json").read_text())["replay"]
            robust_its = len(runs[-1]["robust"]["curve"])
            replay = {"iterations": rp, "robust_iterations": robust_its,
                      "matches": len(rp) == robust_its and all(
                          p["same_trigger"] and p["rows"] == p["robust_rows"]
                          and abs(p["validation_loss"] - p["robust_validation_loss"]) < 1e-4 for p in rp)}
            print(f"  replay of robust's estimates: {'matches' if replay['matches'] else 'DIFFERS from'} robust's "
                  f"search ({len(rp)} of {robust_its} iterations)", flush=True)
        # Cosine between robust's estimates and the exact gradient, on the last trace.
        r = measure([py, TRIGGER_EXACT, "cosine", str(trace), "--threads", str(a.threads),
                     "--out", str(self.out / "trigger-exact-cosine.json")])
        cosine = json.loads((self.out / "trigger-exact-cosine.json").read_text())
        # Source-class accuracy with each trigger (current and best so far) in front.
        setup = json.loads(trace.read_text().splitlines()[0])
        texts = [runs[0]["exact"]["init_text"]]
        for run in runs:
            for side in ("robust", "exact"):
                texts += [p["text"] for p in run[side]["curve"]] + [run[side]["text"]]
        (self.out / "trigger-exact-texts.json").write_text(json.dumps(list(dict.fromkeys(texts))))
        cmd = [py, TRIGGER_EXACT, "dev", "--model", setup["model"], "--corpus", corpus, "--source", str(source),
               "--triggers", str(self.out / "trigger-exact-texts.json"), "--threads", str(a.threads),
               "--batch-size", str(a.batch_size), "--out", str(self.out / "trigger-exact-dev.json")]
        if limit:
            cmd += ["--limit", str(limit)]
        measure(cmd)
        dev = json.loads((self.out / "trigger-exact-dev.json").read_text())
        acc = {t: v["value"] for t, v in dev["accuracy"].items()}
        init_text = runs[0]["exact"]["init_text"]
        for run in runs:
            for side in ("robust", "exact"):
                best = (run["exact"]["initial_validation_loss"], init_text)
                for p in run[side]["curve"]:
                    p["dev_accuracy"] = acc[p["text"]]
                    if p["validation_loss"] < best[0] - 1e-6:
                        best = (p["validation_loss"], p["text"])
                    p["best_text"], p["best_dev_accuracy"] = best[1], acc[best[1]]
                run[side]["dev_accuracy"] = acc[run[side]["text"]]
            run["goal"] = self.trigger_goal(run)
        self.trigger_exact_result = {
            "recipe": a.trigger_exact_recipe, "corpus": corpus, "limit": limit, "source": source,
            "budget": setup["config"].get("max_queries"), "config": setup["config"],
            "search_examples": len(setup["examples"]), "allowed_tokens": len(setup["allowed"]),
            "no_trigger_accuracy": acc[""], "init_text": init_text, "init_accuracy": acc.get(init_text),
            "dev_n": dev["n"], "runs": runs,
            "cosine": {"summary": cosine["summary"], "dims": cosine["dims"], "directions": cosine["directions"],
                       "candidates": cosine["candidates"],
                       "records": [{k: c[k] for k in ("iteration", "cosine", "cosine_per_position", "topk_overlap",
                                                      "topk_overlap_per_position", "shortlist_gain", "norm_ratio")
                                    if k in c}
                                   for c in cosine["records"]],
                       "verify": cosine["verify"], "load1": r["load1"]},
            "points": a.trigger_exact_points, "time_factor": a.trigger_exact_time_factor,
            "replay": replay,
        }
        for run in runs:
            g = run["goal"]
            print(f"  rep {run['rep']}: exact {g['exact_accuracy']:.3f} at {g['exact_seconds']:.1f} s; robust best-so-far "
                  f"{g['robust_accuracy_within']} within {g['limit_seconds']:.1f} s: goal {'met' if g['met'] else 'NOT met'}",
                  flush=True)

    def trigger_exact_summary(self):
        return trigger_exact_lines(self.trigger_exact_result)

    def trigger_goal(self, run):
        """Does robust's best-so-far trigger come within `points` of the exact side's final dev
        accuracy (source-class accuracy: lower is a stronger trigger) within `factor` times the
        exact side's search seconds to that trigger?"""
        pts, factor = self.a.trigger_exact_points / 100, self.a.trigger_exact_time_factor
        ex = run["exact"]
        final = ex["dev_accuracy"]
        # When the exact side first had its final trigger as its best so far.
        first = next((p for p in ex["curve"] if p["best_text"] == ex["text"]), None)
        t_exact = first["seconds"] if first else ex["search_seconds"]
        within = [p for p in run["robust"]["curve"] if p["seconds"] <= factor * t_exact]
        best_within = min((p["best_dev_accuracy"] for p in within), default=None)
        reach = next((p for p in run["robust"]["curve"] if p["best_dev_accuracy"] <= final + pts), None)
        return {"exact_accuracy": final, "exact_seconds": t_exact, "exact_search_seconds": ex["search_seconds"],
                "limit_seconds": factor * t_exact, "robust_accuracy_within": best_within,
                "robust_reached_iteration": reach and reach["iteration"], "robust_reached_seconds": reach and reach["seconds"],
                "met": best_within is not None and best_within <= final + pts + 1e-12}

    def tail_ab(self):
        print("[CLS]-only last layer vs full graph (one process, alternating)", flush=True)
        r = measure([PY, REFERENCE, "tail-ab", *self.py_common, "--repeats", str(self.a.repeats + 2)])
        self.tail_result = {**last_json(r["stdout"]), "load1": r["load1"]}
        t = self.tail_result
        print(f"  full {t['full']['wall_median_s']:.2f} s, cls-tail {t['cls-tail']['wall_median_s']:.2f} s, "
              f"max logit diff {t['max_logit_diff']}", flush=True)

    # --- FLOPs --------------------------------------------------------------------------

    def flops(self):
        """FLOPs per sentence from the graph's weight shapes, at the corpus's token lengths."""
        r = measure([PY, REFERENCE, "flops", "--model", self.a.model, "--corpus", self.corpus,
                     "--batch-size", str(self.a.batch_size), "--sweep", ",".join(map(str, self.a.sweep))])
        self.flops_result = last_json(r["stdout"])

    # --- report -------------------------------------------------------------------------

    def write(self):
        keys = sorted({k for row in self.rows for k in row})
        with open(self.out / "runs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        summary = self.summarise()
        (self.out / "summary.md").write_text(summary)
        extra = {k: getattr(self, k, None) for k in ("matmul_result", "flops_result", "trigger_result", "tail_result",
                                                      "trigger_exact_result")}
        extra["word_attack_checks"] = {kind: self.word_checks(kind) for kind in WORD_ATTACKS if self.word_sides(kind)} or None
        (self.out / "details.json").write_text(json.dumps(extra, indent=2))
        latest = Path(self.a.out).resolve() / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(self.out.name)
        print()
        print(summary)
        print(f"(runs: {self.out / 'runs.csv'}; table: {self.out / 'summary.md'})")

    def med(self, workload, side, key="wall_s"):
        vals = [r[key] for r in self.rows if r["workload"] == workload and r["side"] == side and key in r]
        return statistics.median(vals) if vals else None

    def summarise(self):
        a = self.a
        loads = [r["load1"] for r in self.rows] + [
            getattr(self, k)["load1"] for k in ("matmul_result", "trigger_result", "tail_result") if getattr(self, k, None)]
        loads = loads or [0.0]
        lines = [f"# robust vs Python — {datetime.datetime.now():%Y-%m-%d %H:%M}", "",
                 f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                 f"shared; 1-min load average during runs: median {statistics.median(loads):.1f}, "
                 f"max {max(loads):.1f}. Corpus `{Path(self.corpus).name}`"
                 f"{f' (first {a.limit} rows)' if a.limit else ''}"
                 f"{f'; shuffle on its first {a.shuffle_limit} rows' if a.shuffle_limit else ''}, batch {a.batch_size}, {a.threads} threads, "
                 f"medians of {a.repeats} interleaved runs. `wall` = whole process (load, read, tokenize, infer, "
                 f"score, write); `work` = the program's own timer after loading.", ""]
        if any(r["workload"] in ("infer", "shuffle") for r in self.rows):
            lines += ["| workload | side | wall s | work s | wall ratio (side / robust) | work ratio | peak RSS MiB | model rows | padded / real tokens |",
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for wl in ("infer", "shuffle"):
            sides = []
            for r in self.rows:
                if r["workload"] == wl and r["side"] not in sides and not r["side"].startswith("robust batch"):
                    sides.append(r["side"])
            if "robust" not in sides:
                continue
            rw, rk = self.med(wl, "robust"), self.med(wl, "robust", "work_s")
            for s in sides:
                w, k = self.med(wl, s), self.med(wl, s, "work_s")
                peak = max(r["peak_rss_mib"] for r in self.rows if r["workload"] == wl and r["side"] == s)
                rows = self.med(wl, s, "model_queries") or self.med(wl, s, "n")
                pt, rt = self.med(wl, s, "padded_tokens"), self.med(wl, s, "real_tokens")
                pad = f"{pt / rt:.2f}" if pt and rt else ""
                lines.append(f"| {wl} | {s} | {w:.2f} | {k:.2f} | {w / rw:.2f}× | {k / rk:.2f}× | {peak:.0f} | "
                             f"{rows:.0f} | {pad} |")
        lines.append("")
        for kind in WORD_ATTACKS:
            lines += self.word_attack_lines(kind)
        if getattr(self, "trigger_result", None):
            t = self.trigger_result
            lines += ["## Trigger search", "",
                      f"`{a.trigger_recipe}`{f' with --iterations {a.trigger_iterations}' if a.trigger_iterations else ''}, "
                      f"evaluated on `{Path(self.corpus).name}`: {t['search_queries']} model rows in "
                      f"{t['search_seconds']:.0f} s of search = **{t['queries_per_s']:.0f} queries/s**; "
                      f"whole run (search + evaluation + random baseline) {t['wall_s']:.0f} s, peak RSS "
                      f"{t['peak_rss_mib']:.0f} MiB, load {t['load1']:.1f}."]
            if t["iterations"]:
                first = t["iterations"][0]
                lines.append(f"Source-class accuracy with the trigger in front: {first['source_accuracy']:.3f} after "
                             f"iteration {first['iteration']}, "
                             + (f"**≤ {t['accept']:.2f} (the acceptance drop) after iteration {t['reached']['iteration']}"
                                f", {t['reached']['seconds']:.0f} s and {t['reached']['queries']} queries** "
                                f"(trigger {t['reached']['trigger']!r})." if t["reached"] else
                                f"never ≤ {t['accept']:.2f} within the run."))
            lines.append("")
        if getattr(self, "trigger_exact_result", None):
            lines += self.trigger_exact_summary()
        if getattr(self, "tail_result", None):
            t = self.tail_result
            f, c = t["full"], t["cls-tail"]
            lines += ["## [CLS]-only last layer", "",
                      f"Python onnxruntime, robust's session settings, the two graphs alternating in one process, "
                      f"medians of {t['repeats']} (load {t['load1']:.1f}): full graph {f['wall_median_s']:.2f} s wall / "
                      f"{f['cpu_median_s']:.2f} s CPU, last layer on [CLS] only {c['wall_median_s']:.2f} s / "
                      f"{c['cpu_median_s']:.2f} s ({c['wall_median_s'] / f['wall_median_s'] - 1:+.0%} wall); "
                      f"largest logit difference {t['max_logit_diff']:.1e}.", ""]
        if getattr(self, "matmul_result", None) and getattr(self, "flops_result", None):
            fr, mr = self.flops_result, self.matmul_result
            ceiling = max(r["gflops"] for r in mr["results"])
            best_engine = max(mr["results"], key=lambda r: r["gflops"])
            lines += ["## The limit", "",
                      f"Model: {fr['layers']} layers, hidden {fr['hidden']}, intermediate {fr['intermediate']}; "
                      f"FLOPs per sentence = {fr['per_token_mflop']:.2f} MFLOP × tokens + "
                      f"{fr['per_token2_kflop']:.1f} kFLOP × tokens² + {fr['per_sentence_mflop']:.2f} MFLOP "
                      f"(from the graph's MatMul/Gemm weight shapes; attention QKᵀ and AV per layer).",
                      f"Corpus: mean {fr['mean_tokens']:.1f} real tokens per sentence (max {fr['max_tokens']}) → "
                      f"{fr['mean_real_mflop']:.0f} MFLOP per sentence on real tokens; {fr['real_gflop']:.0f} GFLOP for "
                      f"the corpus.", "",
                      f"Matrix-multiply rate on {a.threads} threads (load {mr['load1']:.1f}):", ""]
            for r in mr["results"]:
                lines.append(f"- {r['engine']}: [{r['m']}×{r['k']}]×[{r['k']}×{r['n']}] {r['gflops']:.1f} GFLOP/s")
            lines += ["", f"Ceiling used: **{ceiling:.1f} GFLOP/s** ({best_engine['engine']}, "
                          f"{best_engine['m']}×{best_engine['k']}×{best_engine['n']}).", "",
                      "Shares: *model* = the FLOPs the exported model needs for the corpus's real tokens "
                      f"({fr['real_gflop']:.0f} GFLOP) per second of robust's own timer, over the ceiling; "
                      "*computed* = the FLOPs robust's batches actually run (padding to each batch's longest "
                      f"row, last layer after attention on [CLS] only: {fr['tail_per_token_mflop']:.2f} MFLOP "
                      "per token less) per second, over the ceiling.", "",
                      "| robust eval batch | work s (median) | model GFLOP/s | model share | computed GFLOP | computed GFLOP/s | computed share | peak RSS MiB |",
                      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for b in a.sweep:
                side = f"robust batch {b}"
                k = self.med("infer", side, "work_s")
                if k is None:
                    continue
                computed = fr.get("narrowed_gflop", fr["padded_gflop"])[str(b)]
                real = fr["real_gflop"]
                peak = max(r["peak_rss_mib"] for r in self.rows if r["side"] == side)
                lines.append(f"| {b} | {k:.2f} | {real / k:.1f} | {real / k / ceiling:.0%} | {computed:.0f} | "
                             f"{computed / k:.1f} | {computed / k / ceiling:.0%} | {peak:.0f} |")
            lines.append("")
        if (getattr(self, "matmul_result", None) and getattr(self, "flops_result", None)
                and self.med("shuffle", "robust", "work_s") and self.med("shuffle", "python-ort (file order)", "work_s")):
            fr = self.flops_result
            ceiling = max(r["gflops"] for r in self.matmul_result["results"])
            real, rows = self.med("shuffle", "robust", "real_tokens"), self.med("shuffle", "robust", "model_queries")
            mean = real / rows
            # Fewest FLOPs an exact computation of these logits needs: no padding, the last
            # layer after attention on [CLS] only, and the quadratic attention term at the mean
            # length (below its true size, so the bound errs in robust's favour).
            need = (real * fr["per_token_mflop"] * 1e6 - (real - rows) * fr["tail_per_token_mflop"] * 1e6
                    + rows * fr["per_sentence_mflop"] * 1e6 + rows * fr["per_token2_kflop"] * 1e3 * mean * mean)
            fastest = need / (ceiling * 1e9)
            rk, pk = self.med("shuffle", "robust", "work_s"), self.med("shuffle", "python-ort (file order)", "work_s")
            pt, prt = self.med("shuffle", "python-ort (file order)", "padded_tokens"), self.med("shuffle", "python-ort (file order)", "real_tokens")
            lines += ["## How far the shuffle ratio can go", "",
                      f"robust's shuffle ran {rows:.0f} rows, {real:.0f} real tokens (mean {mean:.1f}): at least "
                      f"{need / 1e9:.0f} GFLOP for an exact forward pass (no padding, last layer on [CLS] only). "
                      f"robust's work took {rk:.2f} s = {need / 1e9 / rk:.1f} GFLOP/s, "
                      f"**{need / 1e9 / rk / ceiling:.0%} of the {ceiling:.1f} GFLOP/s ceiling**. "
                      f"At 100% of the ceiling it would take {fastest:.2f} s, so against the Python loop's "
                      f"{pk:.2f} s (padded/real tokens {pt / prt:.2f}) the largest ratio any exact fp32 "
                      f"implementation of this model could reach on these {self.a.threads} threads is "
                      f"**{pk / fastest:.2f}×** (measured: {pk / rk:.2f}×).", ""]
        for who, pick in (("robust", lambda s: s.startswith("robust")), ("the Python side", lambda s: not s.startswith("robust"))):
            peaks = [(r["peak_rss_mib"], r["workload"], r["side"]) for r in self.rows if pick(r["side"])]
            if peaks:
                top = max(peaks)
                lines.append(f"Peak RSS of {who}, over every process run: {top[0]:.0f} MiB ({top[1]}, {top[2]}).")
        return "\n".join(lines) + "\n"


def budget_note(side):
    return f" (budget {side['budget']})" if side.get("budget") else ""


def trigger_exact_lines(t):
    """summary.md section for the trigger-exact workload."""
    # How each of robust's estimators spends its rows, as trigger.json names them.
    ESTIMATOR_WORDS = lambda d: {  # noqa: E731
        "shared": f"{d} antithetic direction pairs shared by the batch",
        "per-example": f"{d} antithetic direction pairs drawn afresh for every example",
        "one-sided": f"{2 * d} one-sided directions drawn afresh for every example, each against a "
                     f"leave-one-out baseline",
    }
    # What the estimate is shrunk toward (James-Stein, by its own measured noise); traces from
    # before shrinkage existed have no key and were not shrunk.
    SHRINKAGE_WORDS = {
        "none": "",
        "positions": ", shrunk toward the mean over trigger positions by its own measured noise",
        "history": ", shrunk toward the mean over trigger positions and that toward the previous "
                   "iteration's estimate, by its own measured noise",
    }
    c = t["config"]
    cs = t["cosine"]
    limited = f" (first {t['limit']} rows)" if t.get("limit") else ""
    lines = ["## Trigger search: finite differences (robust) vs exact gradient (PyTorch)", "",
             f"`{t['recipe']}`: {t['search_examples']} search examples, {t['allowed_tokens']} allowed tokens, "
             f"length {c['length']}, batch {c['batch']}, {c['candidates']} candidates, beam {c['beam']}, "
             f"patience {c['patience']}, budget {t['budget']} model rows. robust estimates the gradient from "
             f"{ESTIMATOR_WORDS(c['directions']).get(c.get('estimator', 'shared'), c.get('estimator'))} "
             f"(2 × {c['directions']} × batch rows per estimate"
             f"{SHRINKAGE_WORDS.get(c.get('shrinkage', 'none'), ', shrunk: ' + str(c.get('shrinkage')))}); the "
             f"exact side takes one forward + backward over the batch, **counted as `batch` ({c['batch']}) rows**, "
             f"and runs the beam search's and validation's exact losses on "
             f"{'ONNX Runtime (same kernels and threads as robust, full graph)' if t['runs'][0]['exact']['forward'] == 'ort' else 'torch'}. "
             f"Both start from the same setup (robust's trace: examples, validation batch, pool order, allowed "
             f"tokens, init) and stop by the same rules. Dev accuracy = source-class ({t['source']}) accuracy on "
             f"`{t['corpus']}`{limited}, n = {t['dev_n']}, "
             f"with the trigger in front (\"{{trigger}} {{text}}\"): {t['no_trigger_accuracy']:.3f} without a trigger, "
             f"{t['init_accuracy']:.3f} with the init {t['init_text']!r}. `seconds` = each side's own search timer "
             f"(after loading); `best` = the trigger with the lowest validation loss so far (what the search "
             f"returns if it stops there).", ""]
    rp = t.get("replay")
    if rp:
        verdict = "**retraced robust's search**" if rp["matches"] else "**did not retrace robust's search**"
        lines += [f"Replay check: the exact side's loop fed robust's own estimates from the trace {verdict} "
                  f"({len(rp['iterations'])} of {rp['robust_iterations']} iterations: same triggers, same model rows, "
                  f"validation losses within 1e-4), so the two sides differ only in the gradient.", ""]
    v = t["runs"][0]["exact"]["verify"]
    lines += [f"Torch weights vs model.onnx: {v['sentences']} sentences of {v['min_tokens']}–{v['max_tokens']} tokens, "
              f"max |logit diff| {max(v['max_abs_diff_unpadded'], v['max_abs_diff_padded_batch']):.1e} "
              f"(tolerance {v['tolerance']:.0e}).", ""]
    for run in t["runs"]:
        r, x = run["robust"], run["exact"]
        lines += [f"Repeat {run['rep']}: robust search {r['search_seconds']:.1f} s, {r['queries']} rows"
                  f"{budget_note(r)}, process {r['wall_s']:.1f} s (load {r['load1']:.1f}); exact search "
                  f"{x['search_seconds']:.1f} s, {x['queries']} rows{budget_note(x)}, process {x['wall_s']:.1f} s "
                  f"(load {x['load1']:.1f}).", "",
                  "| side | iteration | model rows | seconds | batch loss | validation loss | trigger | dev acc | best so far | best dev acc |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |"]
        for name, side in (("robust (FD)", r), ("exact", x)):
            for p in side["curve"]:
                lines.append(f"| {name} | {p['iteration']} | {p['queries']} | {p['seconds']:.1f} | {p['batch_loss']:.4f} | "
                             f"{p['validation_loss']:.4f} | {p['text']} | {p['dev_accuracy']:.3f} | {p['best_text']} | "
                             f"{p['best_dev_accuracy']:.3f} |")
        g = run["goal"]
        lines += ["", f"Final triggers: robust {r['text']!r} → dev accuracy {r['dev_accuracy']:.3f}; exact "
                      f"{x['text']!r} → {x['dev_accuracy']:.3f}.",
                  f"Goal (robust within {t['points']:g} points of the exact side's dev accuracy in ≤ "
                  f"{t['time_factor']:g}× its time): exact reached {g['exact_accuracy']:.3f} at {g['exact_seconds']:.1f} s "
                  f"(search ended at {g['exact_search_seconds']:.1f} s); robust's best-so-far within "
                  f"{g['limit_seconds']:.1f} s: "
                  + (f"{g['robust_accuracy_within']:.3f}" if g["robust_accuracy_within"] is not None else "no iteration finished")
                  + f" → **{'met' if g['met'] else 'not met'}**"
                  + (f" (robust got within {t['points']:g} points at iteration {g['robust_reached_iteration']}, "
                     f"{g['robust_reached_seconds']:.1f} s)." if g["robust_reached_iteration"] else
                     f" (robust never got within {t['points']:g} points)."), ""]
    s = cs["summary"]
    if s:
        lines += [f"Cosine between robust's estimate and the exact gradient at the same trigger and batch "
                  f"({len(cs['records'])} estimates, {cs['dims']} dimensions, {cs['directions']} direction pairs): "
                  f"whole vector mean {s['cosine']['mean']:.3f}, min {s['cosine']['min']:.3f}, max {s['cosine']['max']:.3f}; "
                  f"per position mean {s['cosine_per_position']['mean']:.3f}, min {s['cosine_per_position']['min']:.3f}. "
                  f"Overlap of the top-{cs['candidates']} HotFlip sets (estimate vs exact): mean "
                  f"{s['topk_overlap']['mean']:.2f}, min {s['topk_overlap']['min']:.2f}."
                  + (f" Shortlist gain (the exact first-order loss drop of the estimate's top-{cs['candidates']} "
                     f"over that of the exact top-{cs['candidates']}; random tokens score near 0): mean "
                     f"{s['shortlist_gain']['mean']:.2f}, min {s['shortlist_gain']['min']:.2f}."
                     if "shortlist_gain" in s else ""), "",
                  "| iteration | cosine | per position | top-k overlap per position | shortlist gain | ‖estimate‖/‖exact‖ |",
                  "| ---: | ---: | --- | --- | ---: | ---: |"]
        for rc in cs["records"]:
            gain = f"{rc['shortlist_gain']:.2f}" if "shortlist_gain" in rc else ""
            lines.append(f"| {rc['iteration']} | {rc['cosine']:.3f} | {' '.join(f'{v:.3f}' for v in rc['cosine_per_position'])} | "
                         f"{' '.join(f'{v:.2f}' for v in rc['topk_overlap_per_position'])} | {gain} | {rc['norm_ratio']:.2f} |")
        lines.append("")
    return lines


def resummarise(a):
    d = Path(a.summarise)
    h = Harness.__new__(Harness)
    h.a, h.out = a, d
    h.corpus = a.corpus
    h.rows = []
    for row in csv.DictReader(open(d / "runs.csv")):
        conv = {}
        for k, v in row.items():
            if v == "":
                continue
            try:
                conv[k] = float(v)
            except ValueError:
                conv[k] = v
        h.rows.append(conv)
    for k, v in json.loads((d / "details.json").read_text()).items():
        if v is not None:
            setattr(h, k, v)
    summary = h.summarise()
    (d / "summary.md").write_text(summary)
    print(summary)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/sst2-minilm")
    p.add_argument("--robust", default=str(REPO / "target/release/robust"))
    p.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                   help="another robust binary (and global flags), run interleaved as side 'robust (NAME)'")
    p.add_argument("--corpus", default="../shared/data/sst2/dev.tsv")
    p.add_argument("--limit", type=int, help="only the first N rows (quick runs)")
    p.add_argument("--shuffle-limit", type=int, help="shuffle only the first N rows")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--workloads", default="infer,shuffle,typo,synonym,limit,tail,trigger")
    p.add_argument("--no-python", action="store_true", help="robust sides only (before/after checks)")
    p.add_argument("--shuffle-sorted", action="store_true", help="also run the length-sorted Python shuffle loop")
    p.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")], default=[8, 16, 32, 64, 128])
    p.add_argument("--sweep-repeats", type=int, default=2)
    p.add_argument("--matmul-sizes", type=lambda s: s.split(","),
                   default=["832x384x1536", "832x1536x384", "832x384x384", "2048x2048x2048"])
    p.add_argument("--pipeline-python", default=os.environ.get("PIPELINE_PYTHON"),
                   help="a python with torch + transformers + onnx for the pipeline baseline")
    p.add_argument("--pipeline-repeats", type=int, default=1)
    p.add_argument("--textattack-python", default=os.environ.get("TEXTATTACK_PYTHON"),
                   help="a python with textattack for the TextAttack shuffle side")
    p.add_argument("--no-textattack", action="store_true", help="leave the TextAttack side out")
    p.add_argument("--textattack-repeats", type=int, default=1,
                   help="TextAttack shuffle, typo and synonym runs (each is long; the first repeats only)")
    p.add_argument("--word-limit", type=int, default=100,
                   help="typo and synonym: attack the first N rows of --corpus (both sides)")
    p.add_argument("--wordnet", default="/usr/share/wordnet",
                   help="WordNet 3.0 folder for robust's --wordnet (Debian: wordnet-base, wordnet-sense-index); "
                        "TextAttack reads the same files through NLTK (benches/compare/nltk-data)")
    p.add_argument("--stop-words", default=str(REPO / "corpora/stop-words.txt"),
                   help="stop-word list both sides of typo and synonym skip")
    p.add_argument("--trigger-recipe", default="attacks/trigger-pos-to-neg.toml")
    p.add_argument("--trigger-iterations", type=int, default=6)
    p.add_argument("--trigger-source-label", default="1")
    p.add_argument("--trigger-accept", type=float, default=0.5,
                   help="acceptance drop: source-class accuracy at or below this")
    p.add_argument("--exact-python", default=os.environ.get("EXACT_PYTHON") or os.environ.get("PIPELINE_PYTHON"),
                   help="a python with torch + transformers + onnx + onnxruntime + tokenizers for the exact-gradient "
                        "trigger search (trigger-exact workload)")
    p.add_argument("--trigger-exact-recipe", default="attacks/trigger-default.toml")
    p.add_argument("--trigger-exact-corpus", help="evaluation corpus (default: the recipe's corpus and limit)")
    p.add_argument("--trigger-exact-budget", type=int, help="--budget-queries for both sides (default: the recipe's)")
    p.add_argument("--trigger-exact-robust-budget", type=int,
                   help="robust's --budget-queries when it should differ from the exact side's (a time-matched "
                        "rather than budget-matched comparison)")
    p.add_argument("--trigger-exact-iterations", type=int, help="--iterations for both sides (default: the recipe's)")
    p.add_argument("--trigger-exact-robust-args", metavar="FLAGS",
                   help="more flags for robust's side, e.g. \"--estimator shared\" or \"--directions 64\"")
    p.add_argument("--trigger-exact-forward", choices=["ort", "torch"], default="ort",
                   help="engine for the exact side's forward losses (its gradient is always torch)")
    p.add_argument("--trigger-exact-repeats", type=int, default=1)
    p.add_argument("--trigger-exact-replay", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the exact side's loop on robust's own estimates and check it retraces robust")
    p.add_argument("--trigger-exact-points", type=float, default=5.0,
                   help="goal: robust within this many points of the exact side's dev accuracy ...")
    p.add_argument("--trigger-exact-time-factor", type=float, default=2.0,
                   help="... in at most this many times the exact side's search seconds")
    p.add_argument("--out", default=str(REPO / "results/compare"))
    p.add_argument("--summarise", metavar="DIR", help="rebuild DIR/summary.md from its runs.csv and details.json")
    a = p.parse_args()
    if a.summarise:
        return resummarise(a)
    h = Harness(a)
    wl = a.workloads.split(",")
    print(f"results in {h.out}", flush=True)
    try:
        if "infer" in wl:
            h.infer()
        if "shuffle" in wl:
            h.shuffle()
        for kind in WORD_ATTACKS:
            if kind in wl:
                h.word_attack(kind)
        if "limit" in wl:
            h.matmul()
            h.flops()
            h.sweep()
        if "tail" in wl:
            h.tail_ab()
        if "trigger" in wl:
            h.trigger()
        if "trigger-exact" in wl:
            h.trigger_exact()
    finally:
        h.write()


if __name__ == "__main__":
    main()
