#!/usr/bin/env python3
"""TextAttack's side of the word-attack benchmark: its DeepWordBug and PWWS recipes, unchanged,
on the ONNX classifier robust attacks, through onnxruntime.

    python benches/compare/word_attacks.py --recipe deepwordbug            # first 100 SST-2 dev rows
    python benches/compare/word_attacks.py --recipe pwws --limit 20 --examples /tmp/pwws.csv

(with benches/compare/.venv-textattack/bin/python; benches/compare/run sets up its NLTK data:
corpora/stop-words.txt as NLTK's English stop words, Debian's WordNet 3.0 as NLTK's wordnet).
Prints one JSON object (the fields harness.py reads; --out writes it to a file too) and, with
--examples, one CSV row per example.

The model: a ModelWrapper around one onnxruntime session (same threads and session options as
reference.py) that tokenizes with `tokenizers` from the folder's tokenizer.json, pads each call
to its longest row and returns logits (the goal function applies softmax, as it does for
TextAttack's HuggingFace wrapper); it counts the rows it runs and its calls (batches). The
goal function calls it with at most `model_batch_size` = 32 rows (--batch-size). Gold labels
are SST-2's 0 = negative, 1 = positive, mapped to the model's ids through config.json's
label2id. The loop is Attacker._attack's (a fresh AttackedText per row, attack.attack(example,
label), set_seed(seed) once before the first row, query_budget set on the goal function),
written out so that each row's result, queries, model rows and seconds are recorded; the
summary figures are TextAttack's own metrics (textattack.metrics) on those results.

What the two recipes are made of (textattack 0.3.11, read from its source):

DeepWordBugGao2018 (attack_recipes/deepwordbug_gao_2018.py, use_all_transformations=True)
  transformation  CompositeTransformation of four WordSwaps, each random_one=True, so at most one
                  candidate word from each per word position, in this order:
                    WordSwapNeighboringCharacterSwap   i ~ np.random.randint(0, len-1): swap
                                                       word[i], word[i+1]
                    WordSwapRandomCharacterSubstitution i ~ np.random.randint(0, len): word[i] :=
                                                       random.choice(string.ascii_letters)
                    WordSwapRandomCharacterDeletion    i ~ np.random.randint(0, len): drop word[i]
                    WordSwapRandomCharacterInsertion   i ~ np.random.randint(0, len): insert
                                                       random.choice(ascii_letters) before word[i]
                                                       (never after the last character)
                  Words of one character get no candidates; a candidate equal to the word is
                  dropped (e.g. swapping "oo"); duplicates among the four are merged (first kept).
                  Positions come from numpy's global RNG, letters (a-z and A-Z, 52) from Python's
                  `random`; the transformation is not deterministic, so Attack keeps no
                  transformation cache and every call draws afresh.
  constraints     RepeatModification (a word index changed once is not changed again),
                  StopwordModification (default list: NLTK's English stop words, compared
                  case-sensitively with the word as split), LevenshteinEditDistance(30):
                  editdistance.eval(original text, candidate text) <= 30, character edit
                  distance over the whole text (all fields joined), always against the original
                  text of the attack (compare_against_original=True), not the previous step.
  goal function   UntargetedClassification: score = 1 - p(gold); succeeded when argmax != gold.
                  A row the model already gets wrong is skipped (1 query).
  search          GreedyWordSwapWIR(wir_method="unk"): rank the modifiable words (indices the
                  pre-transformation constraints leave: not a stop word, not changed yet; words
                  that will get no candidate, one-letter words say, are ranked too) by the score
                  with the word replaced by "[UNK]" (one query each; the tokenizer reads the
                  literal "[UNK]" as BERT's unknown token, id 100), highest first (numpy argsort
                  of -score: quicksort, so ties are in no promised order); then for each word in
                  that order: the
                  candidates at that index of the current best text, filtered by the
                  constraints, sorted by text; query them all; keep the best if its score beats
                  the current one (strictly), else move on; stop at the first success (the best
                  successful candidate; no similarity scores here) or when the words run out
                  (failed: the final text keeps every improving swap).

PWWSRen2019 (attack_recipes/pwws_ren_2019.py)
  transformation  WordSwapWordNet(language="eng"): every lemma name of every synset of the word
                  (wordnet.synsets(word) over all parts of speech, after NLTK's morphy
                  lemmatisation of the lowercased word), minus the word itself, lemma names with
                  "_" (phrases) and anything TextAttack's word splitter does not see as one word;
                  a set, so the candidates are then ordered by filter_transformations' sort by text.
                  The lemma name goes in as WordNet spells it (no case matching to the word it
                  replaces). Deterministic, but Attack caches transformations only under hashable
                  keys and indices_to_modify=[i] is a list, so every call recomputes it.
  constraints     RepeatModification, StopwordModification (as above); no edit-distance or
                  semantic constraint.
  goal function   UntargetedClassification (as above).
  search          GreedyWordSwapWIR(wir_method="weighted-saliency"): saliency = score with the
                  word replaced by "[UNK]" (one query per modifiable word); softmax over those
                  scores; for each modifiable word, query every candidate at that index of the
                  ORIGINAL text and take the best score, delta_p (0 without candidates); rank by
                  softmax(saliency) * delta_p, highest first; then the greedy loop above, which
                  scores (and counts) again every candidate the delta_p pass scored for as long as
                  the current text is still the original.

How TextAttack counts num_queries (goal_functions/goal_function.py, get_results): every text
passed to the goal function counts, model cache hits included; the original text counts 1
(init_attack_example), the "[UNK]" ranking counts one per modifiable word, PWWS's delta_p pass
counts every candidate of every word, and the greedy loop counts every candidate it scores even
when the goal function's LRU cache (keyed by the text, and by how many attack_attrs it has)
answers it without a model call. So for PWWS the greedy loop's first step re-counts candidates
the delta_p pass already paid for. The cache is cleared after each example (Attack._attack).
`queries_mean` is TextAttack's "Avg num queries": the mean of num_queries over succeeded and
failed rows (skipped rows left out); `model_rows` is what the model actually ran (cache misses),
so at most the sum of num_queries over all rows (equal for DeepWordBug, whose random candidates
and "[UNK]" texts rarely repeat; about 11% below it for PWWS on SST-2). Words perturbed % ("Average perturbed word %") is, over
successful attacks only, the share of the original's words (TextAttack's word splitter) whose
word at the same index differs in the perturbed text.
"""

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from reference import load, predict, read_tsv, textattack_version  # noqa: E402

RECIPES = {
    "deepwordbug": "DeepWordBugGao2018",
    "pwws": "PWWSRen2019",
}
# SST-2 (GLUE): 1 = positive, 0 = negative.
DATASET_LABELS = {0: "negative", 1: "positive"}


def read_stop_words(path):
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip() and not w.startswith("#")]


def offline_nltk():
    """NLTK's data from the venv (benches/compare/nltk-data wrote it), never from the network:
    WordSwapWordNet.__init__ calls nltk.download("omw-1.4"), which only needs the network and
    is not needed for English (lang="eng" reads WordNet itself)."""
    venv_data = Path(sys.prefix) / "nltk_data"
    if venv_data.is_dir():
        os.environ.setdefault("NLTK_DATA", str(venv_data))
    import nltk

    if os.environ.get("NLTK_DATA") and os.environ["NLTK_DATA"] not in nltk.data.path:
        nltk.data.path.insert(0, os.environ["NLTK_DATA"])
    nltk.download = lambda *args, **kwargs: True  # noqa: E731 - nothing to fetch offline
    return nltk


def check_wordnet(nltk):
    try:
        from nltk.corpus import wordnet

        version = wordnet.get_version()
    except LookupError as e:
        raise SystemExit(f"word_attacks.py: NLTK cannot find WordNet ({e.args[0].splitlines()[1].strip()}); "
                         f"run benches/compare/nltk-data {sys.prefix} (needs Debian's wordnet-base and "
                         f"wordnet-sense-index: apt-get install wordnet-base wordnet-sense-index)")
    if version != "3.0":
        raise SystemExit(f"word_attacks.py: NLTK's WordNet is version {version}, expected 3.0")
    return version


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", required=True, choices=sorted(RECIPES) + sorted(RECIPES.values()))
    p.add_argument("--model", default="models/sst2-minilm")
    p.add_argument("--corpus", default="../shared/data/sst2/dev.tsv")
    p.add_argument("--limit", "-n", type=int, default=100, help="the first N rows of the corpus")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="the goal function's model_batch_size")
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--query-budget", type=int, help="queries per example (default: none)")
    p.add_argument("--stop-words", default=str(REPO / "corpora/stop-words.txt"),
                   help="stop-word list (one a line, # comments) for StopwordModification; 'nltk' keeps the "
                        "list NLTK serves (the recipe's default). benches/compare/nltk-data makes NLTK serve "
                        "this same file, so the two agree there")
    p.add_argument("--examples", help="write one CSV row per example here")
    p.add_argument("--out", help="also write the JSON object here")
    a = p.parse_args()
    recipe_name = RECIPES.get(a.recipe, a.recipe)

    t0 = time.perf_counter()
    nltk = offline_nltk()
    import numpy as np
    import torch

    import textattack
    from textattack import attack_recipes
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult
    from textattack.constraints.pre_transformation import StopwordModification
    from textattack.metrics import AttackQueries, AttackSuccessRate, WordsPerturbed
    from textattack.models.wrappers import ModelWrapper
    from textattack.shared import AttackedText

    torch.set_num_threads(a.threads)
    wordnet_version = check_wordnet(nltk) if recipe_name == "PWWSRen2019" else None
    tok, sess = load(a.model, a.threads, a.max_len)
    config = json.loads(Path(a.model, "config.json").read_text())
    label2id = {name: int(i) for i, name in config["id2label"].items()}
    if set(label2id) != set(DATASET_LABELS.values()):
        raise SystemExit(f"{a.model}: id2label {config['id2label']} is not SST-2's negative/positive")
    tok_stats = {"real_tokens": 0, "padded_tokens": 0}
    counts = {"rows": 0, "batches": 0, "seconds": 0.0}

    class OnnxWrapper(ModelWrapper):
        def __init__(self):
            self.model = sess

        def __call__(self, text_input_list, **kwargs):
            t = time.perf_counter()
            texts = list(text_input_list)
            logits = np.stack(predict(tok, sess, texts, len(texts), "file", tok_stats))
            counts["rows"] += len(texts)
            counts["batches"] += 1
            counts["seconds"] += time.perf_counter() - t
            return logits

    attack = getattr(attack_recipes, recipe_name).build(OnnxWrapper())
    attack.goal_function.batch_size = a.batch_size
    if a.query_budget:
        attack.goal_function.query_budget = a.query_budget
    stopword = next(c for c in attack.pre_transformation_constraints if isinstance(c, StopwordModification))
    nltk_default = set(stopword.stopwords)
    if a.stop_words == "nltk":
        stop_source = "nltk.corpus.stopwords.words('english')"
    else:
        stopword.stopwords = set(read_stop_words(a.stop_words))
        stop_source = a.stop_words
    texts, labels = read_tsv(a.corpus)
    texts, labels = texts[: a.limit], labels[: a.limit]
    if any(l not in DATASET_LABELS for l in labels):
        raise SystemExit(f"{a.corpus}: labels must be 0/1 (SST-2)")
    t1 = time.perf_counter()

    textattack.shared.utils.set_seed(a.seed)
    results, rows = [], []
    for i, (text, gold) in enumerate(zip(texts, labels)):
        before_rows, t = counts["rows"], time.perf_counter()
        result = attack.attack(AttackedText(text), label2id[DATASET_LABELS[gold]])
        results.append(result)
        kind = ("skipped" if isinstance(result, SkippedAttackResult) else
                "succeeded" if isinstance(result, SuccessfulAttackResult) else
                "failed" if isinstance(result, FailedAttackResult) else type(result).__name__)
        original = result.original_result.attacked_text
        perturbed = result.perturbed_result.attacked_text
        rows.append({
            "line": i + 2, "result": kind, "gold": gold,
            "original_label": int(result.original_result.output),
            "perturbed_label": int(result.perturbed_result.output),
            "original": original.text, "perturbed": perturbed.text if kind != "skipped" else "",
            "num_queries": result.num_queries, "words": len(original.words),
            "words_changed": len(original.all_words_diff(perturbed)) if kind != "skipped" else 0,
            "model_rows": counts["rows"] - before_rows, "seconds": round(time.perf_counter() - t, 6),
        })
    t2 = time.perf_counter()

    n = len(results)
    by = {k: sum(1 for r in rows if r["result"] == k) for k in ("succeeded", "failed", "skipped")}
    attacked = [r for r in rows if r["result"] != "skipped"]
    queries = [r["num_queries"] for r in attacked]
    perturbed_pct = [100.0 * r["words_changed"] / r["words"] for r in rows
                     if r["result"] == "succeeded" and r["words"]]
    ta_metrics = {}
    for metric in (AttackSuccessRate(), WordsPerturbed(), AttackQueries()):
        for k, v in metric.calculate(results).items():
            if np.isscalar(v) or isinstance(v, (int, float)):
                ta_metrics[k] = float(v) if isinstance(v, (np.floating, float)) else int(v)
    work_s = t2 - t1
    out = {
        "workload": "word-attack", "recipe": recipe_name, "n": n, **by,
        "attack_success_rate": by["succeeded"] / max(by["succeeded"] + by["failed"], 1),
        "accuracy_under_attack": by["failed"] / max(n, 1),
        "original_accuracy": (n - by["skipped"]) / max(n, 1),
        "words_perturbed_mean_pct": statistics.fmean(perturbed_pct) if perturbed_pct else 0.0,
        "queries_mean": statistics.fmean(queries) if queries else 0.0,
        "queries_median": statistics.median(queries) if queries else 0.0,
        "queries_total": sum(queries),
        "model_rows": counts["rows"], "batches": counts["batches"],
        "load_seconds": t1 - t0, "wall_seconds": work_s,
        "model_seconds": counts["seconds"],
        "ms_per_model_row": 1000 * work_s / max(counts["rows"], 1),
        "model_ms_per_row": 1000 * counts["seconds"] / max(counts["rows"], 1),
        **tok_stats,
        "seed": a.seed, "query_budget": a.query_budget, "batch_size": a.batch_size, "threads": a.threads,
        "stop_words": {"source": stop_source, "count": len(stopword.stopwords),
                       "same_as_nltk_default": set(stopword.stopwords) == nltk_default},
        "wordnet": wordnet_version, "corpus": a.corpus, "model": a.model,
        "textattack": textattack_version(), "textattack_metrics": ta_metrics,
    }
    if a.examples:
        Path(a.examples).parent.mkdir(parents=True, exist_ok=True)
        with open(a.examples, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["line"])
            w.writeheader()
            w.writerows(rows)
    line = json.dumps(out)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    sys.exit(main())
