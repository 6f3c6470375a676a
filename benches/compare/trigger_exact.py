#!/usr/bin/env python3
"""Exact-gradient reference for robust's universal-trigger search (issue #14, point 5).

Wallace et al. (2019) rank HotFlip candidates with the exact gradient of the loss with respect
to the trigger's word embeddings. robust has no autodiff and estimates that gradient by central
finite differences along random Gaussian directions. This script loads the weights of the same
model.onnx into transformers' BertForSequenceClassification (PyTorch autodiff) and

  verify     checks that the torch model's logits match ONNX Runtime's (>= 20 sentences of
             various lengths, max |diff| < 1e-4); every other sub-command runs it first and
             stops if it fails
  cosine     for every gradient record of a robust --gradient-trace file: the exact gradient at
             the same trigger and batch, the cosine with robust's estimate (whole vector and
             per trigger position), and the overlap of the top-`candidates` HotFlip sets ranked
             by the estimate and by the exact gradient
  search     robust's search (src/attack/trigger/search.rs `TriggerSearch::run`) from the trace's
             setup line (same examples, validation batch, pool order, allowed tokens, init,
             config and query budget), with the finite-difference estimate replaced by the exact
             gradient: one forward + backward over the batch, counted as `batch` model rows.
             Exact losses (beam search, validation) run on ONNX Runtime with robust's session
             settings (--forward torch runs them on the torch model instead), cached by token ids
             like robust's prediction cache, so a repeated input is not counted again.
             --replay feeds the loop robust's own estimates from the trace instead: it must then
             retrace robust's search (same triggers, model rows and validation losses), which
             checks that the two sides differ only in the gradient
  dev        source-class accuracy on an evaluation corpus with each given trigger text in front
             ("{trigger} {text}"), on ONNX Runtime
  fake-setup a setup line built here from a recipe's corpus and exclusion list, for testing the
             search without a robust trace (its examples are not robust's)

Output: one JSON document per sub-command (--out FILE, else stdout's last line).
"""

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402


# --- models --------------------------------------------------------------------------------

def ort_session(model_dir, threads):
    """ONNX Runtime session with robust's settings: threads, sequential, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])


def tokenizer(model_dir, max_len=512):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok


def pad(rows):
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def ort_logits(sess, rows, batch_size=32):
    """Logits (float32) for token-id rows, sorted by length and batched as robust does."""
    names = {i.name for i in sess.get_inputs()}
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = [None] * len(rows)
    for s in range(0, len(order), batch_size):
        chunk = order[s : s + batch_size]
        ids, mask = pad([rows[i] for i in chunk])
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        (logits,) = sess.run(["logits"], feed)
        for r, i in enumerate(chunk):
            out[i] = logits[r]
    return out


def torch_model(model_dir, threads):
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from reference import torch_model_from_onnx

    model = torch_model_from_onnx(model_dir)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def torch_logits(model, rows, batch_size=32):
    import torch

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = [None] * len(rows)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            ids, mask = pad([rows[i] for i in chunk])
            ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
            logits = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits.numpy()
            for r, i in enumerate(chunk):
                out[i] = logits[r]
    return out


def verify(model, sess, tok, texts, tolerance=1e-4):
    """Torch vs ONNX Runtime logits on >= 20 sentences of various lengths, one at a time and
    padded in one batch. Raises SystemExit when the largest difference reaches `tolerance`."""
    # Spread over the length range: sort by length and take evenly spaced sentences, plus two
    # long concatenations.
    texts = sorted(set(t for t in texts if t.strip()), key=len)
    picks = [texts[round(i * (len(texts) - 1) / 21)] for i in range(22)] if len(texts) >= 22 else list(texts)
    picks += ["ok", "not bad .", " ".join(texts[-3:]), " ".join(texts[-6:])]
    rows = [tok.encode(t).ids for t in picks]
    if len(rows) < 20:
        raise SystemExit(f"logit check needs 20 sentences, got {len(rows)}")
    ref = ort_logits(sess, rows, batch_size=1)
    single = torch_logits(model, rows, batch_size=1)
    batched = torch_logits(model, rows, batch_size=len(rows))
    diff_single = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, single))
    diff_batched = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, batched))
    lengths = [len(r) for r in rows]
    result = {"sentences": len(rows), "min_tokens": min(lengths), "max_tokens": max(lengths),
              "max_abs_diff_unpadded": diff_single, "max_abs_diff_padded_batch": diff_batched,
              "tolerance": tolerance}
    print(f"logit check: {len(rows)} sentences of {min(lengths)}-{max(lengths)} tokens, max |torch - onnxruntime| "
          f"{diff_single:.2e} one at a time, {diff_batched:.2e} in one padded batch", file=sys.stderr, flush=True)
    if not (diff_single < tolerance and diff_batched < tolerance):
        raise SystemExit(f"FAILED: torch weights do not reproduce model.onnx: {result}")
    return result


# --- the search's pieces, as in src/attack/trigger/ -------------------------------------------

def with_trigger(cls, sep, position, trigger, text):
    if position == "prefix":
        return [cls, *trigger, *text, sep], 1
    return [cls, *text, *trigger, sep], 1 + len(text)


def loss_of(logits, gold, target):
    """targeted -log p(target), untargeted log p(gold); float32 logits, float64 sum."""
    m = float(np.max(logits))
    lse = m + math.log(sum(math.exp(float(np.float32(l) - np.float32(m))) for l in logits))
    if target is not None:
        return lse - float(logits[target])
    return float(logits[gold]) - lse


class Losses:
    """Exact mean losses with a prediction cache keyed by token ids; counts rows actually run."""

    def __init__(self, forward, capacity=200_000):
        self.forward = forward
        self.cache = {}
        self.capacity = capacity
        self.rows_run = 0

    def logits(self, rows):
        keys = [tuple(r) for r in rows]
        missing, seen = [], set()
        for k in keys:
            if k not in self.cache and k not in seen:
                seen.add(k)
                missing.append(k)
        if missing:
            got = self.forward([list(k) for k in missing])
            self.rows_run += len(missing)
            for k, l in zip(missing, got):
                if self.capacity:
                    if len(self.cache) >= self.capacity:  # oldest first, as robust's cache
                        self.cache.pop(next(iter(self.cache)))
                    self.cache[k] = l
            fresh = dict(zip(missing, got))
        else:
            fresh = {}
        return [self.cache[k] if k in self.cache else fresh[k] for k in keys]


class Setup:
    def __init__(self, s):
        self.raw = s
        self.position = s.get("position", "prefix")
        self.target = s.get("target")
        self.source = s.get("source")
        self.cls, self.sep = s["cls"], s["sep"]
        self.init = list(s["init"])
        self.allowed = np.array(sorted(s["allowed"]), dtype=np.int64)
        self.examples = [(list(e["ids"]), int(e["gold"])) for e in s["examples"]]
        self.validation = list(s["validation"])
        self.pool = list(s["pool"])
        self.config = s["config"]
        self.model_dir = s["model"]

    def rows(self, trigger, idx):
        return [with_trigger(self.cls, self.sep, self.position, trigger, self.examples[i][0]) for i in idx]

    def mean_losses(self, losses, triggers, idx):
        rows = [r for t in triggers for r, _ in self.rows(t, idx)]
        logits = losses.logits(rows)
        n = len(idx)
        out = []
        for j in range(len(triggers)):
            chunk = logits[j * n : (j + 1) * n]
            out.append(sum(loss_of(l, self.examples[i][1], self.target) for l, i in zip(chunk, idx)) / max(n, 1))
        return out


def exact_gradient(model, setup, trigger, idx):
    """d(mean loss over the batch)/d(trigger word embeddings), [length, hidden] (float32), and the
    mean loss, from one forward + backward over the batch (rows padded, attention-masked)."""
    import torch

    placed = setup.rows(trigger, idx)
    ids, mask = pad([r for r, _ in placed])
    ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
    table = model.bert.embeddings.word_embeddings.weight
    with torch.enable_grad():
        emb = table[ids].detach().clone().requires_grad_(True)
        logits = model(inputs_embeds=emb, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
        lg = logits.double()
        lse = torch.logsumexp(lg, dim=-1)
        gold = torch.tensor([setup.examples[i][1] for i in idx])
        if setup.target is not None:
            per = lse - lg[:, setup.target]
        else:
            per = lg.gather(1, gold[:, None])[:, 0] - lse
        loss = per.mean()
        loss.backward()
    g = emb.grad
    L = len(trigger)
    grad = torch.zeros(L, g.shape[-1], dtype=g.dtype)
    for r, (_, start) in enumerate(placed):
        grad += g[r, start : start + L]
    return grad.numpy().astype(np.float32), float(loss.detach())


def hotflip_candidates(table, allowed, trigger, grad, k):
    """Per position, the k allowed tokens w != trigger[p] with the smallest e_w . g_p (ties by id)."""
    E = table[allowed]  # [n_allowed, hidden]
    out = []
    for p in range(len(trigger)):
        scores = E @ grad[p]
        keep = allowed != trigger[p]
        s, ids = scores[keep], allowed[keep]
        kk = min(k, len(ids))
        order = np.lexsort((ids, s))[:kk]
        out.append([int(ids[i]) for i in order])
    return out


# --- sub-commands ----------------------------------------------------------------------------

def read_trace(path):
    setup, grads, iters = None, [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            t = rec.get("type")
            if t == "setup":
                setup = rec
            elif t == "gradient":
                grads.append(rec)
            elif t == "iteration":
                iters.append(rec)
    if setup is None:
        raise SystemExit(f"{path}: no setup line")
    return setup, grads, iters


def load_all(a, setup):
    model_dir = a.model or setup["model"]
    sess = ort_session(model_dir, a.threads)
    tok = tokenizer(model_dir)
    model = torch_model(model_dir, a.threads)
    texts = [tok.decode(e["ids"], skip_special_tokens=True) for e in setup["examples"][:400]]
    if a.verify_corpus:
        texts += read_corpus(a.verify_corpus)[0][:400]
    check = verify(model, sess, tok, texts)
    table = model.bert.embeddings.word_embeddings.weight.detach().numpy()
    return model_dir, sess, tok, model, table, check


def cmd_verify(a):
    setup = json.loads(open(a.trace).readline()) if a.trace else {"model": a.model, "examples": []}
    _, _, _, _, _, check = load_all(a, setup)
    emit(a, {"verify": check})


def cmd_cosine(a):
    s, grads, _ = read_trace(a.trace)
    setup = Setup(s)
    _, _, _, model, table, check = load_all(a, s)
    k = setup.config["candidates"]
    L = setup.config["length"]
    recs = []
    for g in grads:
        est = np.asarray(g["estimate"], dtype=np.float32).reshape(L, -1)
        exact, loss = exact_gradient(model, setup, g["trigger"], g["batch"])
        cos = lambda x, y: float(np.dot(x.ravel().astype(np.float64), y.ravel()) /  # noqa: E731
                                 (np.linalg.norm(x.astype(np.float64)) * np.linalg.norm(y.astype(np.float64)) + 1e-30))
        ce = hotflip_candidates(table, setup.allowed, g["trigger"], est, k)
        cx = hotflip_candidates(table, setup.allowed, g["trigger"], exact, k)
        overlap = [len(set(a_) & set(b_)) / max(len(b_), 1) for a_, b_ in zip(ce, cx)]
        # How good the estimate's shortlist is, not only how much it shares: the exact
        # first-order loss drop (e_cur - e_w) . g of its tokens over that of the exact shortlist's.
        gain = []
        for p, (a_, b_) in enumerate(zip(ce, cx)):
            g64, cur = exact[p].astype(np.float64), table[g["trigger"][p]].astype(np.float64)
            drop = lambda ws: float(np.mean([(cur - table[w].astype(np.float64)) @ g64 for w in ws])) if ws else 0.0  # noqa: E731
            gain.append(drop(a_) / drop(b_) if drop(b_) > 0 else float("nan"))
        rec = {"iteration": g["iteration"], "trigger": g["trigger"], "cosine": cos(est, exact),
               "cosine_per_position": [cos(est[p], exact[p]) for p in range(L)],
               "topk_overlap_per_position": overlap, "topk_overlap": sum(overlap) / len(overlap),
               "shortlist_gain_per_position": gain, "shortlist_gain": sum(gain) / len(gain),
               "norm_ratio": float(np.linalg.norm(est) / (np.linalg.norm(exact) + 1e-30)), "batch_loss": loss}
        recs.append(rec)
        print(f"  it {rec['iteration']:2}: cosine {rec['cosine']:+.3f}  per position "
              f"{' '.join(f'{c:+.3f}' for c in rec['cosine_per_position'])}  top-{k} overlap "
              f"{rec['topk_overlap']:.2f}  shortlist gain {rec['shortlist_gain']:.2f}  |est|/|exact| {rec['norm_ratio']:.2f}", file=sys.stderr, flush=True)
    summary = {}
    if recs:
        for key in ("cosine", "topk_overlap", "shortlist_gain"):
            vals = [r[key] for r in recs]
            summary[key] = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals)}
        pp = [c for r in recs for c in r["cosine_per_position"]]
        summary["cosine_per_position"] = {"mean": sum(pp) / len(pp), "min": min(pp), "max": max(pp)}
    emit(a, {"verify": check, "candidates": k, "directions": setup.config.get("directions"),
             "dims": L * table.shape[1], "records": recs, "summary": summary})


def cmd_search(a):
    s, trace_grads, trace_iters = read_trace(a.trace)
    setup = Setup(s)
    model_dir, sess, tok, model, table, check = load_all(a, s)
    cfg = setup.config
    estimates = {g["iteration"]: g for g in trace_grads}
    if a.forward == "torch":
        losses = Losses(lambda rows: torch_logits(model, rows, a.batch_size))
    else:
        losses = Losses(lambda rows: ort_logits(sess, rows, a.batch_size))
    decode = lambda ids: tok.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
    max_q = a.max_queries if a.max_queries is not None else cfg.get("max_queries")
    max_it, patience, beam_w, k = cfg["max_iterations"], cfg["patience"], max(cfg["beam"], 1), cfg["candidates"]
    val, pool = setup.validation, setup.pool
    grad_rows_run = 0

    def queries():
        return losses.rows_run + grad_rows_run

    def left():
        return float("inf") if max_q is None else max(max_q - queries(), 0)

    start = time.perf_counter()
    trigger = list(setup.init)
    init_vloss = setup.mean_losses(losses, [trigger], val)[0]
    best = (init_vloss, list(trigger))
    curve, stale, cursor = [], 0, 0
    for iteration in range(1, max_it + 1):
        bs = min(cfg["batch"], len(pool))
        idx = [pool[(cursor + j) % len(pool)] for j in range(bs)]
        rows = len(idx)
        # One forward + backward over the batch; --replay uses robust's own estimates (its
        # 2 x directions x batch rows) to check that this loop is robust's loop.
        grad_rows = 2 * cfg["directions"] * rows if a.replay else rows
        if left() < grad_rows + rows + len(val):
            break
        cursor = (cursor + rows) % max(len(pool), 1)
        g0 = time.perf_counter()
        if a.replay:
            rec = estimates.get(iteration)
            if rec is None or rec["trigger"] != trigger or rec["batch"] != idx:
                print(f"  replay: iteration {iteration} differs from robust's trace "
                      f"({'no estimate' if rec is None else 'trigger or batch'}); stopping", file=sys.stderr)
                break
            grad = np.asarray(rec["estimate"], dtype=np.float32).reshape(len(trigger), -1)
        else:
            grad, _ = exact_gradient(model, setup, trigger, idx)
        grad_s = time.perf_counter() - g0
        grad_rows_run += grad_rows
        cands = hotflip_candidates(table, setup.allowed, trigger, grad, k)
        beams = [(setup.mean_losses(losses, [trigger], idx)[0], list(trigger))]
        for p, cp in enumerate(cands):
            proposals = []
            for _, b in beams:
                for c in cp:
                    t = list(b)
                    t[p] = c
                    proposals.append(t)
            affordable = max(left() - len(val), 0) // max(rows, 1)
            if affordable != float("inf"):
                proposals = proposals[: int(affordable)]
            if not proposals:
                break
            ls = setup.mean_losses(losses, proposals, idx)
            pb = sorted(beams + list(zip(ls, proposals)), key=lambda x: (x[0], x[1]))
            dedup = []
            for x in pb:
                if not dedup or dedup[-1][1] != x[1]:
                    dedup.append(x)
            beams = dedup[:beam_w]
        batch_loss, trigger = beams[0][0], list(beams[0][1])
        vloss = setup.mean_losses(losses, [trigger], val)[0]
        if vloss < best[0] - 1e-6:
            best, stale = (vloss, list(trigger)), 0
        else:
            stale += 1
        point = {"iteration": iteration, "trigger": trigger, "text": decode(trigger), "batch_loss": batch_loss,
                 "validation_loss": vloss, "queries": queries(), "seconds": time.perf_counter() - start,
                 "gradient_seconds": grad_s}
        curve.append(point)
        print(f"  it {iteration:2} {point['seconds']:6.1f} s {point['queries']:6} rows  batch {batch_loss:.4f}  "
              f"validation {vloss:.4f}  {point['text']!r}", file=sys.stderr, flush=True)
        if stale >= patience or (max_q is not None and queries() >= max_q):
            break
    if a.replay:
        robust_its = {r["iteration"]: r for r in trace_iters}
        replay = [{"iteration": p["iteration"], "same_trigger": robust_its.get(p["iteration"], {}).get("trigger") == p["trigger"],
                   "rows": p["queries"], "robust_rows": robust_its.get(p["iteration"], {}).get("queries"),
                   "validation_loss": p["validation_loss"],
                   "robust_validation_loss": robust_its.get(p["iteration"], {}).get("validation_loss")} for p in curve]
        for r in replay:
            print(f"  replay it {r['iteration']}: same trigger {r['same_trigger']}, rows {r['rows']} vs robust "
                  f"{r['robust_rows']}, validation loss {r['validation_loss']:.6f} vs {r['robust_validation_loss']}",
                  file=sys.stderr)
    emit(a, {"verify": check, "forward": a.forward, "replay": (replay if a.replay else None), "threads": a.threads, "torch_threads": torch_threads(),
             "gradient_rows_counted_per_iteration": cfg["batch"], "init": setup.init, "init_text": decode(setup.init),
             "initial_validation_loss": init_vloss, "max_queries": max_q,
             "trigger": best[1], "text": decode(best[1]), "validation_loss": best[0],
             "queries": queries(), "seconds": time.perf_counter() - start, "curve": curve})


def torch_threads():
    import torch

    return torch.get_num_threads()


def read_corpus(path, text_col=None, label_col="label", limit=None):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t" if not path.endswith(".csv") else ",", quoting=csv.QUOTE_NONE))
    header = rows[0]
    t = header.index(text_col) if text_col else (header.index("sentence") if "sentence" in header else header.index("text"))
    lab = header.index(label_col) if label_col in header else None
    data = [r for r in rows[1:] if r and any(c.strip() for c in r)]
    if limit:
        data = data[:limit]
    return [r[t] for r in data], [r[lab] if lab is not None else None for r in data]


def label_index(model_dir, label):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    names = {v.lower(): int(k) for k, v in cfg["id2label"].items()}
    return names[label.lower()] if label.lower() in names else int(label)


def cmd_dev(a):
    """Source-class accuracy with each trigger text in front, on ONNX Runtime."""
    sess = ort_session(a.model, a.threads)
    tok = tokenizer(a.model)
    texts, labels = read_corpus(a.corpus, limit=a.limit)
    source = label_index(a.model, a.source)
    src = [t for t, l in zip(texts, labels) if l is not None and label_index(a.model, l) == source]
    triggers = json.load(open(a.triggers)) if a.triggers else []
    out = {"corpus": a.corpus, "limit": a.limit, "source": source, "n": len(src), "accuracy": {}}
    t0 = time.perf_counter()
    for trig in [""] + [t for t in dict.fromkeys(triggers)]:
        variants = [f"{trig} {t}" if trig else t for t in src]
        rows = [e.ids for e in tok.encode_batch(variants)]
        logits = ort_logits(sess, rows, a.batch_size)
        k = sum(1 for l in logits if int(np.argmax(l)) == source)
        out["accuracy"][trig] = {"k": k, "n": len(src), "value": k / max(len(src), 1)}
        print(f"  {trig!r:45} source-class accuracy {k}/{len(src)} = {k / max(len(src), 1):.3f}",
              file=sys.stderr, flush=True)
    out["seconds"] = time.perf_counter() - t0
    emit(a, out)


def cmd_fake_setup(a):
    """A setup line like robust's, built here (for testing without a trace)."""
    tok = tokenizer(a.model)
    sess = ort_session(a.model, a.threads)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    labels = [v for _, v in sorted(cfg["id2label"].items(), key=lambda kv: int(kv[0]))]
    source, target = label_index(a.model, a.source), label_index(a.model, a.target)
    cls, sep = tok.encode("").ids
    stop = {l.lower() for l in labels}
    if a.exclude:
        words = [w.strip() for w in open(a.exclude, encoding="utf-8") if w.strip() and not w.startswith("#")]
        stop |= {w.lower() for w in words}
        for e in tok.encode_batch(words):
            first = [i for i in e.ids if i not in (cls, sep)]
            if first:
                stop.add(tok.id_to_token(first[0]).lower())
    vocab = tok.get_vocab(with_added_tokens=True)
    specials = {cls, sep, tok.token_to_id("[PAD]"), tok.token_to_id("[UNK]"), tok.token_to_id("[MASK]")}
    allowed = sorted(i for t, i in vocab.items()
                     if i not in specials and not (t.startswith("[") and t.endswith("]")) and not t.startswith("##")
                     and t.strip() and not any(c.isdigit() for c in t) and t.lower() not in stop)
    texts, labs = read_corpus(a.search_corpus)
    cand = [(e.ids, source) for e, l in zip(tok.encode_batch(texts), labs) if label_index(a.model, l) == source
            and len(e.ids) >= 8 + 2]
    rng = random.Random(a.seed)
    rng.shuffle(cand)
    cand = cand[: 2 * a.max_search_examples]
    logits = ort_logits(sess, [c[0] for c in cand])
    examples = [{"ids": c[0][1:-1], "gold": c[1]} for c, l in zip(cand, logits) if int(np.argmax(l)) == c[1]]
    examples = examples[: a.max_search_examples]
    order = list(range(len(examples)))
    rng.shuffle(order)
    vs = max(1, min(a.batch, len(examples) // 2))
    setup = {"type": "setup", "model": a.model, "position": "prefix", "target": target, "source": source,
             "cls": cls, "sep": sep, "init": [tok.token_to_id("the")] * a.length, "allowed": allowed,
             "examples": examples, "validation": order[:vs], "pool": order[vs:],
             "config": {"length": a.length, "directions": 16, "sigma": 0.5, "sigma_abs": None, "candidates": 20,
                        "beam": 2, "batch": a.batch, "max_iterations": 30, "patience": 5,
                        "max_queries": a.budget}}
    Path(a.out).write_text(json.dumps(setup) + "\n")
    print(f"wrote {a.out}: {len(examples)} examples, {len(allowed)} allowed tokens", file=sys.stderr)


def emit(a, obj):
    text = json.dumps(obj)
    if getattr(a, "out", None):
        Path(a.out).write_text(json.dumps(obj, indent=1))
    print(text if len(text) < 20000 else json.dumps({"out": a.out}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, trace=True):
        if trace:
            sp.add_argument("trace", help="robust attack --gradient-trace FILE (JSON lines)")
        sp.add_argument("--model", help="model folder (default: the trace's)")
        sp.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads")
        sp.add_argument("--batch-size", type=int, default=32)
        sp.add_argument("--verify-corpus", help="also check logits on this corpus's sentences")
        sp.add_argument("--out")

    sp = sub.add_parser("verify")
    common(sp, trace=False)
    sp.add_argument("--trace")
    sp.set_defaults(fn=cmd_verify)
    sp = sub.add_parser("cosine")
    common(sp)
    sp.set_defaults(fn=cmd_cosine)
    sp = sub.add_parser("search")
    common(sp)
    sp.add_argument("--forward", choices=["ort", "torch"], default="ort",
                    help="engine for the exact losses of the beam search and validation (the gradient is always torch)")
    sp.add_argument("--replay", action="store_true",
                    help="use robust's estimates from the trace instead of the exact gradient: a check that this "
                         "search loop reproduces robust's triggers and row counts")
    sp.add_argument("--max-queries", type=int, help="query budget (default: the trace's config.max_queries)")
    sp.set_defaults(fn=cmd_search)
    sp = sub.add_parser("dev")
    sp.add_argument("--model", default="models/sst2-minilm")
    sp.add_argument("--corpus", required=True)
    sp.add_argument("--limit", type=int)
    sp.add_argument("--source", required=True, help="source label (name or index)")
    sp.add_argument("--triggers", help="JSON list of trigger texts")
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--batch-size", type=int, default=32)
    sp.add_argument("--out")
    sp.set_defaults(fn=cmd_dev)
    sp = sub.add_parser("fake-setup")
    sp.add_argument("--model", default="models/sst2-minilm")
    sp.add_argument("--search-corpus", default="corpora/rt-snippets-search.tsv")
    sp.add_argument("--source", default="positive")
    sp.add_argument("--target", default="negative")
    sp.add_argument("--exclude", default="corpora/sentiment-words.txt")
    sp.add_argument("--max-search-examples", type=int, default=1000)
    sp.add_argument("--batch", type=int, default=32)
    sp.add_argument("--length", type=int, default=3)
    sp.add_argument("--budget", type=int, default=9000)
    sp.add_argument("--seed", type=int, default=13)
    sp.add_argument("--threads", type=int, default=2)
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_fake_setup)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
