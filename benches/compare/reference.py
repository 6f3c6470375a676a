#!/usr/bin/env python3
"""The Python side of benches/compare/run: what a user would write instead of robust.

Every workload does the same work as the robust command it is compared with, on the same
model.onnx, tokenizer.json and corpus, with the same batch size and ONNX Runtime threads:

  infer      read the corpus, tokenize, run the classifier in batches, score accuracy
  shuffle    read, word-shuffle each sentence N times (distinct permutations), tokenize, infer
             originals and variants, score the flip rate, write examples.csv and summary.csv
  textattack the shuffle workload done the TextAttack way: its Augmenter with the
             WordInnerSwapRandom transformation makes 10 word-order variants per sentence, and
             its batch_model_predict runs them through a ModelWrapper around the same
             onnxruntime session (needs textattack; run only where it imports)
  pipeline   the infer workload through a transformers `pipeline` (torch) holding the weights
             of model.onnx (needs torch + transformers + onnx; run only where they import)
  matmul     sgemm rate (numpy's BLAS and ONNX Runtime's MatMul) at the model's shapes and at a
             large square size
  flops      the model's FLOPs per sentence from the graph, at the corpus's token lengths
  tail-ab    robust's [CLS]-only last layer against the full graph, alternating in one process

The default loop is the one people write: batches in file order, each padded to its longest
row (`--order file`). `--order length` sorts rows by token count first, as robust does, so the
table can say how much of robust's lead is batching and how much is everything else.

Each workload prints one JSON line with its timings; the caller measures wall time and peak
RSS of the whole process.
"""

import argparse
import csv
import json
import math
import os
import random
import re
import sys
import time


def read_tsv(path, text_col="sentence", label_col="label"):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    t = header.index(text_col) if text_col in header else header.index("text")
    l = header.index(label_col) if label_col in header else None
    texts, labels = [], []
    for row in rows[1:]:
        if not row or all(not c.strip() for c in row):
            continue
        texts.append(row[t])
        labels.append(int(row[l]) if l is not None else None)
    return texts, labels


def load(model_dir, threads, max_len):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(
        os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"]
    )
    return tok, sess


def predict(tok, sess, texts, batch_size, order, stats):
    """Logits for every text, in the order given."""
    import numpy as np

    input_names = {i.name for i in sess.get_inputs()}
    idx = list(range(len(texts)))
    encodings = None
    if order == "length":
        encodings = tok.encode_batch(texts)
        idx.sort(key=lambda i: len(encodings[i].ids))
    out = [None] * len(texts)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start : start + batch_size]
        if encodings is None:
            encs = tok.encode_batch([texts[i] for i in chunk])
        else:
            encs = [encodings[i] for i in chunk]
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for r, e in enumerate(encs):
            n = len(e.ids)
            ids[r, :n] = e.ids
            mask[r, :n] = 1
            types[r, :n] = e.type_ids
            stats["real_tokens"] += n
        stats["padded_tokens"] += ids.size
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in input_names:
            feed["token_type_ids"] = types
        (logits,) = sess.run(["logits"], feed)
        for r, i in enumerate(chunk):
            out[i] = logits[r]
    return out


def softmax(row):
    m = max(row)
    e = [math.exp(float(x) - m) for x in row]
    s = sum(e)
    return [x / s for x in e]


def argmax(row):
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def cmd_infer(a):
    t0 = time.perf_counter()
    tok, sess = load(a.model, a.threads, a.max_len)
    texts, labels = read_tsv(a.corpus)
    t1 = time.perf_counter()
    stats = {"real_tokens": 0, "padded_tokens": 0}
    logits = predict(tok, sess, texts, a.batch_size, a.order, stats)
    t2 = time.perf_counter()
    correct = sum(1 for l, g in zip(logits, labels) if argmax(l) == g)
    report(a, load_s=t1 - t0, work_s=t2 - t1, n=len(texts), correct=correct, **stats)


# The word tokenizer of src/attack/words.rs, close enough for SST's pre-tokenised text: words
# (letters/digits, with inner apostrophes and hyphens), SST's split clitics, and runs of one
# punctuation character.
WORD = re.compile(r"'(?:s|re|ve|ll|d|m)\b|\w+(?:['’\-]\w+)*|([^\w\s])\1*")


def shuffles(text, samples, rng, tries_per_sample=20):
    tokens = [m.group(0) for m in WORD.finditer(text)]
    if sum(1 for t in tokens if t[0].isalnum()) < 2:
        return None
    original = " ".join(tokens)
    seen, out = set(), []
    for _ in range(samples * tries_per_sample):
        if len(out) == samples:
            break
        order = tokens[:]
        rng.shuffle(order)
        s = " ".join(order)
        if s != original and s not in seen:
            seen.add(s)
            out.append(s)
    return out or None


def score_and_write(out, texts, labels, variants, logits):
    """Flip rate of the variants against their originals (logits: originals first, then each
    text's variants in order), written as examples.csv and summary.csv; returns (flips, n)."""
    probs = [softmax(row) for row in logits]
    preds = [argmax(p) for p in probs]
    flips = n = 0
    at = len(texts)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "examples.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["line", "text", "gold", "original_label", "variant", "label", "confidence", "flipped"])
        for i, (text, gold) in enumerate(zip(texts, labels)):
            for v in variants[i]:
                flipped = preds[at] != preds[i]
                flips += flipped
                n += 1
                w.writerow([i + 2, text, gold, preds[i], v, preds[at], f"{probs[at][preds[at]]:.6f}", int(flipped)])
                at += 1
    with open(os.path.join(out, "summary.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["metric", "k", "n", "value"])
        w.writerow(["flip_rate", flips, n, f"{flips / max(n, 1):.6f}"])
    return flips, n


def cmd_shuffle(a):
    t0 = time.perf_counter()
    tok, sess = load(a.model, a.threads, a.max_len)
    texts, labels = read_tsv(a.corpus)
    t1 = time.perf_counter()
    variants = []
    for i, text in enumerate(texts):
        rng = random.Random(a.seed * 1_000_003 + i)
        variants.append(shuffles(text, a.samples, rng) or [])
    batch = list(texts)
    for v in variants:
        batch.extend(v)
    t2 = time.perf_counter()
    stats = {"real_tokens": 0, "padded_tokens": 0}
    logits = predict(tok, sess, batch, a.batch_size, a.order, stats)
    t3 = time.perf_counter()
    flips, n = score_and_write(a.out, texts, labels, variants, logits)
    t4 = time.perf_counter()
    report(
        a,
        load_s=t1 - t0,
        perturb_s=t2 - t1,
        infer_s=t3 - t2,
        score_write_s=t4 - t3,
        work_s=t4 - t1,
        n=len(texts),
        rows=len(batch),
        flips=flips,
        variants=n,
        **stats,
    )


def cmd_textattack(a):
    """The shuffle workload with TextAttack's own parts: `Augmenter(WordInnerSwapRandom)` with
    every word moved (pct_words_to_swap=1) and 10 augmentations per sentence is TextAttack's
    word-order perturbation; `batch_model_predict` is how its goal functions call a model, here
    a `ModelWrapper` around the same onnxruntime session and tokenizer as the plain loop. The
    variants are not the same permutations as robust's (TextAttack moves words by pairwise
    swaps and leaves punctuation in place), but the same kind and the same number, on the same
    model; the workload is timed the same way, read to CSV."""
    t0 = time.perf_counter()
    try:
        import numpy as np
        import textattack
        from textattack.augmentation import Augmenter
        from textattack.constraints.pre_transformation import RepeatModification
        from textattack.models.wrappers import ModelWrapper
        from textattack.shared.utils import batch_model_predict
        from textattack.transformations import WordInnerSwapRandom
    except Exception as e:  # noqa: BLE001 - report why, let the table say "not run"
        print(json.dumps({"workload": "textattack", "error": f"textattack not importable: {e}"}))
        return
    tok, sess = load(a.model, a.threads, a.max_len)
    stats = {"real_tokens": 0, "padded_tokens": 0}

    class OnnxWrapper(ModelWrapper):
        def __init__(self):
            self.model = sess

        def __call__(self, text_input_list, **kwargs):
            return np.stack(predict(tok, sess, list(text_input_list), len(text_input_list), "file", stats))

    wrapper = OnnxWrapper()
    texts, labels = read_tsv(a.corpus)
    textattack.shared.utils.set_seed(a.seed)
    augmenter = Augmenter(transformation=WordInnerSwapRandom(), constraints=[RepeatModification()],
                          pct_words_to_swap=1.0, transformations_per_example=a.samples)
    t1 = time.perf_counter()
    variants = []
    for text in texts:
        out = [v for v in augmenter.augment(text) if v != text][: a.samples]
        variants.append(out)
    batch = list(texts)
    for v in variants:
        batch.extend(v)
    t2 = time.perf_counter()
    logits = batch_model_predict(wrapper, batch, batch_size=a.batch_size)
    t3 = time.perf_counter()
    flips, n = score_and_write(a.out, texts, labels, variants, logits)
    t4 = time.perf_counter()
    report(a, load_s=t1 - t0, perturb_s=t2 - t1, infer_s=t3 - t2, score_write_s=t4 - t3, work_s=t4 - t1,
           n=len(texts), rows=len(batch), flips=flips, variants=n, textattack=textattack_version(), **stats)


def textattack_version():
    from importlib.metadata import version

    return version("textattack")


def torch_model_from_onnx(model_dir):
    """A BertForSequenceClassification holding exactly the weights of model.onnx.

    The model folder ships only the ONNX export; the export keeps each weight's module path in
    its node name (`/bert/encoder/layer.0/attention/self/query/MatMul`), and MatMul weights are
    stored transposed.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import BertConfig, BertForSequenceClassification

    g = onnx.load(os.path.join(model_dir, "model.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    state = {name: w for name, w in inits.items() if not name.startswith("onnx::")}
    for node in g.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        for name in node.input:
            if name in inits and name.startswith("onnx::"):
                path = node.name.rsplit("/", 1)[0].strip("/").replace("/", ".")
                w = inits[name]
                trans_b = any(at.name == "transB" and at.i == 1 for at in node.attribute)
                state[path + ".weight"] = w if trans_b else w.T
    for node in g.node:  # Gemm weights that carry their module name already
        if node.op_type == "Gemm":
            path = node.name.rsplit("/", 1)[0].strip("/").replace("/", ".")
            for name in node.input[1:]:
                if name in inits and not name.startswith("onnx::"):
                    state.setdefault(path + (".weight" if inits[name].ndim == 2 else ".bias"), inits[name])
    config = BertConfig.from_pretrained(model_dir)
    model = BertForSequenceClassification(config)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing:
        raise SystemExit(f"weights missing from the ONNX graph: {missing}")
    return model.eval()


def cmd_pipeline(a):
    """transformers text-classification pipeline on the same weights (torch, same threads)."""
    t0 = time.perf_counter()
    try:
        import numpy as np
        import torch
        from transformers import BertTokenizerFast, pipeline
    except Exception as e:  # noqa: BLE001 - report why, let the table say "not run"
        print(json.dumps({"workload": "pipeline", "error": f"transformers/torch not importable: {e}"}))
        return
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    model = torch_model_from_onnx(a.model)
    tok = BertTokenizerFast(tokenizer_file=os.path.join(a.model, "tokenizer.json"))
    clf = pipeline("text-classification", model=model, tokenizer=tok, device=-1)
    texts, labels = read_tsv(a.corpus)
    # The same weights as model.onnx: compare logits on the first rows with ONNX Runtime.
    otok, sess = load(a.model, a.threads, a.max_len)
    probe = texts[:32]
    ref = predict(otok, sess, probe, 32, "file", {"real_tokens": 0, "padded_tokens": 0})
    with torch.inference_mode():
        enc = tok(probe, padding=True, truncation=True, return_tensors="pt")
        got = model(**enc).logits.numpy()
    diff = float(np.max(np.abs(np.stack(ref) - got)))
    del sess
    t1 = time.perf_counter()
    with torch.inference_mode():
        out = clf(texts, batch_size=a.batch_size, truncation=True)
    t2 = time.perf_counter()
    id2label = model.config.id2label
    label2id = {v: int(k) for k, v in id2label.items()}
    correct = sum(1 for o, g in zip(out, labels) if label2id[o["label"]] == g)
    report(a, load_s=t1 - t0, work_s=t2 - t1, n=len(texts), correct=correct, max_logit_diff=diff,
           torch=torch.__version__, threads_used=torch.get_num_threads())


def cmd_matmul(a):
    """sgemm GFLOP/s on `--threads` threads, best of `repeats`: numpy's BLAS (threads from the
    environment) and ONNX Runtime's own MatMul kernel (MLAS), the one the model runs on."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",")]
    rng = np.random.default_rng(0)
    blas = "numpy"
    try:
        blas = "numpy " + np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001
        pass

    def best_rate(fn, flop):
        fn()
        reps = max(3, int(1e10 / flop))
        best = float("inf")
        for _ in range(a.repeats):
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t) / reps)
        return flop / best / 1e9

    results = []
    for m, k, n in sizes:
        flop = 2 * m * k * n
        x = rng.standard_normal((m, k), dtype=np.float32)
        w = rng.standard_normal((k, n), dtype=np.float32)
        y = np.empty((m, n), dtype=np.float32)
        results.append({"engine": blas, "m": m, "k": k, "n": n,
                        "gflops": best_rate(lambda: np.matmul(x, w, out=y), flop)})
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
            [numpy_helper.from_array(w, "w")])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        proto.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
        results.append({"engine": f"onnxruntime {ort.__version__} MatMul", "m": m, "k": k, "n": n,
                        "gflops": best_rate(lambda: sess.run(None, {"x": x}), flop)})
    print(json.dumps({"workload": "matmul", "results": results}))


def cmd_flops(a):
    """FLOPs per sentence from the graph: 2·k·n per token for each MatMul whose right operand is
    a weight, 2·k·n per sentence for each Gemm (pooler and classifier see only [CLS]), and
    4·L²·d per layer for attention (QKᵀ and the weighted sum of V); then the corpus's token
    lengths, and the padded FLOPs robust's batching computes (distinct inputs, sorted by length,
    chunks of the batch size, each padded to its longest row)."""
    import onnx
    from onnx import numpy_helper  # noqa: F401
    from tokenizers import Tokenizer

    g = onnx.load(os.path.join(a.model, "model.onnx"), load_external_data=False).graph
    dims = {i.name: list(i.dims) for i in g.initializer}
    per_token = per_sentence = 0
    for node in g.node:
        weights = [dims[x] for x in node.input[1:2] if x in dims and len(dims[x]) == 2]
        if node.op_type == "MatMul" and weights:
            per_token += 2 * weights[0][0] * weights[0][1]
        elif node.op_type == "Gemm" and weights:
            per_sentence += 2 * weights[0][0] * weights[0][1]
    # robust narrows the last layer after its attention to [CLS] (onnx.rs, with_cls_only_tail):
    # in a BERT graph those are the last three weight MatMuls (attention output, intermediate,
    # output), which then run on one position per sentence instead of every position.
    weight_mms = [dims[n.input[1]] for n in g.node
                  if n.op_type == "MatMul" and n.input[1] in dims and len(dims[n.input[1]]) == 2]
    tail_per_token = sum(2 * k * n for k, n in weight_mms[-3:])
    layers = sum(1 for n in g.node if n.op_type == "Softmax")
    hidden = next(d[1] for name, d in dims.items() if "word_embeddings" in name)
    intermediate = max(d[1] for d in dims.values() if len(d) == 2 and d[0] == hidden and d[1] != hidden)
    per_token2 = 4 * hidden * layers

    def f(length):
        return per_token * length + per_token2 * length * length + per_sentence

    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(a.max_len)
    texts, _ = read_tsv(a.corpus)
    encs = tok.encode_batch(texts)
    distinct = {}
    for e in encs:
        distinct.setdefault((tuple(e.ids), tuple(e.type_ids)), len(e.ids))
    lengths = sorted(distinct.values())  # stable sort of distinct inputs, as robust batches them
    real = [len(e.ids) for e in encs]
    padded_gflop, narrowed_gflop, padded_tokens = {}, {}, {}
    for b in [int(x) for x in a.sweep.split(",")]:
        total = toks = 0
        for s in range(0, len(lengths), b):
            chunk = lengths[s : s + b]
            total += len(chunk) * f(max(chunk))
            toks += len(chunk) * max(chunk)
        padded_gflop[str(b)] = total / 1e9
        narrowed_gflop[str(b)] = (total - tail_per_token * (toks - len(lengths))) / 1e9
        padded_tokens[str(b)] = toks
    print(json.dumps({
        "workload": "flops", "layers": layers, "hidden": hidden, "intermediate": intermediate,
        "per_token_mflop": per_token / 1e6, "per_token2_kflop": per_token2 / 1e3,
        "per_sentence_mflop": per_sentence / 1e6, "mean_tokens": sum(real) / len(real),
        "max_tokens": max(real), "mean_real_mflop": sum(f(l) for l in real) / len(real) / 1e6,
        "real_gflop": sum(f(l) for l in real) / 1e9, "padded_gflop": padded_gflop,
        "narrowed_gflop": narrowed_gflop, "tail_per_token_mflop": tail_per_token / 1e6,
        "padded_tokens": padded_tokens}))


def cmd_tail_ab(a):
    """robust's [CLS]-only last layer (src/onnx.rs, with_cls_only_tail) against the graph as
    exported, in one process, alternating, with robust's session settings (2 threads, no
    spinning): the rewrite is repeated here on the default BERT export by node name, so that
    its effect is measured apart from everything else robust does."""
    import statistics

    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from tokenizers import Tokenizer

    m = onnx.load(os.path.join(a.model, "model.onnx"))
    g = m.graph
    last = max(int(n.name.split("layer.")[1].split("/")[0]) for n in g.node if "/layer." in n.name)
    dense = f"/bert/encoder/layer.{last}/attention/output/dense/MatMul"
    residual = f"/bert/encoder/layer.{last}/attention/output/Add"
    by_name = {n.name: n for n in g.node}
    ctx = by_name[dense].input[0]
    prev = [i for i in by_name[residual].input if i != by_name[dense].output[0] and "dense" not in i][0]
    for name, v in (("starts", 0), ("ends", 1), ("axes", 1)):
        g.initializer.append(numpy_helper.from_array(np.array([v], dtype=np.int64), "cls_" + name))
    nodes = []
    for n in g.node:
        if n.name == dense:
            for t in (ctx, prev):
                nodes.append(helper.make_node("Slice", [t, "cls_starts", "cls_ends", "cls_axes"], [t + "/cls"]))
            n.input[0] = ctx + "/cls"
        if n.name == residual:
            n.input[list(n.input).index(prev)] = prev + "/cls"
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)

    def session(model):
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    sessions = {"full": session(os.path.join(a.model, "model.onnx")), "cls-tail": session(m.SerializeToString())}
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(a.max_len)
    texts, _ = read_tsv(a.corpus)
    times = {k: [] for k in sessions}
    out = {}
    for rep in range(a.repeats):
        order = list(sessions) if rep % 2 == 0 else list(reversed(list(sessions)))
        for k in order:
            t, c = time.perf_counter(), time.process_time()
            out[k] = predict(tok, sessions[k], texts, a.batch_size, "length", {"real_tokens": 0, "padded_tokens": 0})
            times[k].append((time.perf_counter() - t, time.process_time() - c))
    diff = float(np.max(np.abs(np.stack(out["full"]) - np.stack(out["cls-tail"]))))
    print(json.dumps({"workload": "tail-ab", "max_logit_diff": diff, "repeats": a.repeats, **{
        k: {"wall_median_s": statistics.median(x[0] for x in v), "cpu_median_s": statistics.median(x[1] for x in v),
            "wall_s": [x[0] for x in v]} for k, v in times.items()}}))


def report(a, **fields):
    print(json.dumps({"workload": a.cmd, "order": getattr(a, "order", None), **fields}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("infer", "shuffle", "textattack", "pipeline", "tail-ab"):
        s = sub.add_parser(name)
        s.add_argument("--model", default="models/sst2-minilm")
        s.add_argument("--corpus", required=True)
        s.add_argument("--batch-size", type=int, default=32)
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--max-len", type=int, default=512)
        s.add_argument("--order", choices=["file", "length"], default="file")
    for name in ("shuffle", "textattack"):
        sub.choices[name].add_argument("--samples", type=int, default=10)
        sub.choices[name].add_argument("--seed", type=int, default=13)
        sub.choices[name].add_argument("--out", required=True)
    sub.choices["pipeline"].add_argument("--weights", required=True)
    sub.choices["tail-ab"].add_argument("--repeats", type=int, default=5)
    m = sub.add_parser("matmul")
    m.add_argument("--sizes", default="832x384x1536,2048x2048x2048")
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--repeats", type=int, default=5)
    fl = sub.add_parser("flops")
    fl.add_argument("--model", default="models/sst2-minilm")
    fl.add_argument("--corpus", required=True)
    fl.add_argument("--batch-size", type=int, default=32)
    fl.add_argument("--max-len", type=int, default=512)
    fl.add_argument("--sweep", default="8,16,32,64,128")
    a = p.parse_args()
    commands = {"infer": cmd_infer, "shuffle": cmd_shuffle, "textattack": cmd_textattack, "pipeline": cmd_pipeline,
                "matmul": cmd_matmul, "flops": cmd_flops, "tail-ab": cmd_tail_ab}
    commands[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
