#!/usr/bin/env python3
"""Offline study of finite-difference gradient estimators against the exact gradient (issue #14).

For every gradient record of a robust --gradient-trace file (the trigger and batch robust's own
search was at), this computes the exact gradient (PyTorch autodiff on the weights of model.onnx,
as trigger_exact.py does) and then draws a fresh estimate with each variant given, running the
perturbed rows on the torch model (inputs_embeds), and reports each variant's cosine with the
exact gradient and its shortlist gain: the exact first-order loss drop (e_cur - e_w) . g of the
variant's top-`candidates` tokens per position over that of the exact top-`candidates`. That
gain, not the cosine, is what the search feels: HotFlip ranks the vocabulary by e_w . g.

Every variant spends the same rows (`directions` x batch, one-sided, leave-one-out baseline, as
robust's default estimator) unless its spec says otherwise, and every variant of a record draws
from the same seed, so the comparison is paired. Variants (NAME[:sigma[:directions]]):

  raw           robust's one-sided estimator, isotropic Gaussian directions (sigma in units of
                the embedding table's RMS; default 0.5, 64 directions an example)
  cov=P         directions drawn with covariance Sigma^P (Sigma: the allowed tokens' embedding
                covariance, normalised to mean variance 1), mapped back by Sigma^-P: unbiased,
                with the noise moved toward the directions the vocabulary varies in
  two=K/R       half the directions isotropic; the top-K tokens per position of that estimate
                span a subspace (their top-R principal directions), and the other half measures
                the gradient there ("more directions where the ranking is uncertain")
  positions     raw, then James-Stein shrinkage toward the mean over positions, by the noise
                the estimate measures in itself (even vs odd directions): robust's
                --shrinkage positions
  history       positions, and the mean over positions shrunk toward the direction of this
                variant's own previous estimate (records taken in order): --shrinkage history

Usage: estimator_study.py TRACE [--variants raw,positions,history] [--records 0,1,2]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import trigger_exact as te  # noqa: E402


class Study:
    def __init__(self, trace, threads):
        import torch

        self.torch = torch
        s, self.grads, _ = te.read_trace(trace)
        self.setup = te.Setup(s)
        self.model = te.torch_model(self.setup.model_dir, threads)
        self.table = self.model.bert.embeddings.word_embeddings.weight.detach().numpy()
        self.rms = float(np.sqrt((self.table.astype(np.float64) ** 2).mean()))
        self.L = self.setup.config["length"]
        self.H = self.table.shape[1]
        self.k = self.setup.config["candidates"]
        allowed = self.table[self.setup.allowed].astype(np.float64)
        lam, vec = np.linalg.eigh(np.cov(allowed.T))
        self.eig = (np.maximum(lam, 1e-12), vec)
        self.previous = {}

    def cov_power(self, p):
        lam, vec = self.eig
        m = (vec * lam ** p) @ vec.T
        return m / (np.trace(m) / self.H)

    def losses(self, embs, idx):
        """Per-row losses of rows given as [tokens, hidden] embeddings (attention-masked)."""
        torch = self.torch
        n = len(idx)
        order = sorted(range(len(embs)), key=lambda i: embs[i].shape[0])
        out = [None] * len(embs)
        with torch.inference_mode():
            for s in range(0, len(order), 64):
                chunk = order[s : s + 64]
                w = max(embs[i].shape[0] for i in chunk)
                e = np.zeros((len(chunk), w, self.H), np.float32)
                mask = np.zeros((len(chunk), w), np.int64)
                for r, i in enumerate(chunk):
                    e[r, : embs[i].shape[0]] = embs[i]
                    mask[r, : embs[i].shape[0]] = 1
                mask_t = torch.from_numpy(mask)
                logits = self.model(inputs_embeds=torch.from_numpy(e), attention_mask=mask_t,
                                    token_type_ids=torch.zeros_like(mask_t)).logits.numpy()
                for r, i in enumerate(chunk):
                    gold = self.setup.examples[idx[i % n]][1]
                    out[i] = te.loss_of(logits[r], gold, self.setup.target)
        return np.array(out)

    def one_sided(self, trigger, idx, rng, sigma_rel, m, basis=None):
        """robust's one-sided estimator with m directions an example; `basis` (per position,
        hidden x r) restricts the directions to a subspace. Returns the estimate and the
        difference of the even and odd directions' halves (its noise, for shrinkage)."""
        sigma = sigma_rel * self.rms
        placed = self.setup.rows(trigger, idx)
        base = [self.table[np.array(r)] for r, _ in placed]
        n = len(idx)
        dim = self.H if basis is None else basis[0].shape[1]
        z = rng.standard_normal((m * n, self.L, dim))
        u = z if basis is None else np.einsum("phr,kpr->kph", np.stack(basis), z)
        embs = []
        for d in range(m):
            for e, ((_, start), b) in enumerate(zip(placed, base)):
                x = b.copy()
                x[start : start + self.L] += (sigma * u[d * n + e]).astype(np.float32)
                embs.append(x)
        ls = self.losses(embs, idx).reshape(m, n)
        total = ls.sum(0)
        g = np.zeros((self.L, self.H))
        split = np.zeros((self.L, self.H))
        for d in range(m):
            scale = (ls[d] - (total - ls[d]) / (m - 1)) / (sigma * m * n)
            term = np.tensordot(scale, u[d * n : (d + 1) * n], axes=1)
            g += term
            split += term if d % 2 == 0 else -term
        return g, split

    def shrink(self, g, split, previous):
        """robust's `shrink` (src/attack/trigger/shrink.rs)."""
        L, H = self.L, self.H
        noise = float(np.sum(split ** 2)) / (L * H)

        def keep(dims, part):
            norm = float(np.sum(part ** 2))
            return 1.0 if dims <= 2 or norm <= 0 else max(0.0, 1 - (dims - 2) * noise / norm)

        mean = g.mean(0)
        apart = g - mean
        c_pos = keep((L - 1) * H, apart)
        center = mean
        if previous is not None:
            d = previous.mean(0)
            if np.linalg.norm(d) > 0:
                unit = d / np.linalg.norm(d)
                along = (unit @ mean) * unit
                c_hist = keep(H - 1, np.tile(mean - along, (L, 1)))
                center = along + c_hist * (mean - along)
        return center[None, :] + c_pos * apart

    def estimate(self, spec, record, rng):
        name, *rest = spec.split(":")
        sigma_rel = float(rest[0]) if rest else 0.5
        m = int(rest[1]) if len(rest) > 1 else 64
        trigger, idx = record["trigger"], record["batch"]
        if name == "raw":
            g, split = self.one_sided(trigger, idx, rng, sigma_rel, m)
            # The cosine the estimate's own noise predicts: E|g|^2 = |true|^2 + |noise|^2.
            self.predicted = float(np.sqrt(max(0.0, 1 - np.sum(split ** 2) / np.sum(g ** 2))))
            return g
        if name.startswith("cov="):
            s = self.cov_power(float(name[4:]))
            root = np.linalg.cholesky(s + 1e-12 * np.eye(self.H))
            # Directions root @ z per position: covariance s; map back with s^-1.
            g = self.one_sided(trigger, idx, rng, sigma_rel, m, basis=[root] * self.L)[0]
            return g @ np.linalg.inv(s)
        if name.startswith("two="):
            top, r = (int(x) for x in name[4:].split("/"))
            g1, _ = self.one_sided(trigger, idx, rng, sigma_rel, m // 2)
            short = te.hotflip_candidates(self.table, self.setup.allowed, trigger, g1.astype(np.float32), top)
            basis = []
            for p in range(self.L):
                x = self.table[np.array(short[p])].astype(np.float64)
                basis.append(np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:r].T)
            g2, _ = self.one_sided(trigger, idx, rng, sigma_rel, m // 2, basis=basis)
            out = g1.copy()
            for p, b in enumerate(basis):
                out[p] = g1[p] - b @ (b.T @ g1[p]) + g2[p]
            return out
        if name in ("positions", "history"):
            g, split = self.one_sided(trigger, idx, rng, sigma_rel, m)
            out = self.shrink(g, split, self.previous.get(spec) if name == "history" else None)
            self.previous[spec] = out
            return out
        raise SystemExit(f"unknown variant {spec!r}")

    def score(self, est, exact, trigger):
        est32 = est.astype(np.float32)
        ce = te.hotflip_candidates(self.table, self.setup.allowed, trigger, est32, self.k)
        cx = te.hotflip_candidates(self.table, self.setup.allowed, trigger, exact, self.k)
        gains = []
        for p, (a, b) in enumerate(zip(ce, cx)):
            g64, cur = exact[p].astype(np.float64), self.table[trigger[p]].astype(np.float64)

            def drop(ws):
                return float(np.mean([(cur - self.table[w].astype(np.float64)) @ g64 for w in ws]))

            gains.append(drop(a) / drop(b))
        x, y = est.ravel().astype(np.float64), exact.ravel().astype(np.float64)
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))), float(np.mean(gains))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--variants", default="raw,positions,history")
    p.add_argument("--records", help="gradient records to use, in order (default: all)")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    a = p.parse_args()
    study = Study(a.trace, a.threads)
    variants = a.variants.split(",")
    picks = [int(x) for x in a.records.split(",")] if a.records else range(len(study.grads))
    rows = {v: [] for v in variants}
    exacts = []
    for r in picks:
        rec = study.grads[r]
        exact, _ = te.exact_gradient(study.model, study.setup, rec["trigger"], rec["batch"])
        exacts.append(exact.astype(np.float64))
        own = np.asarray(rec["estimate"], np.float32).reshape(study.L, -1)
        c, g = study.score(own, exact, rec["trigger"])
        print(f"record {r} (iteration {rec['iteration']}): the trace's own estimate: cosine {c:+.3f}, gain {g:.3f}",
              file=sys.stderr, flush=True)
        for v in variants:
            t0 = time.time()
            rng = np.random.default_rng(a.seed + r)
            c, g = study.score(study.estimate(v, rec, rng), exact, rec["trigger"])
            row = {"record": r, "iteration": rec["iteration"], "cosine": c, "shortlist_gain": g}
            note = ""
            if v == "raw":
                row["predicted_cosine"] = study.predicted
                note = f"  (its noise predicts cosine {study.predicted:.3f})"
            rows[v].append(row)
            print(f"  {v:20} cosine {c:+.3f}  gain {g:.3f}{note}  ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    summary = {v: {"cosine": float(np.mean([x["cosine"] for x in rs])),
                   "shortlist_gain": float(np.mean([x["shortlist_gain"] for x in rs])), "records": rs}
               for v, rs in rows.items()}
    for v, s in summary.items():
        print(f"{v:20} mean cosine {s['cosine']:+.3f}  mean shortlist gain {s['shortlist_gain']:.3f}", file=sys.stderr)

    # The structure shrinkage leans on, in the exact gradients: positions' gradients alike, and
    # consecutive points' gradients (summed over positions) alike.
    def cos(x, y):
        return float(x.ravel() @ y.ravel() / (np.linalg.norm(x) * np.linalg.norm(y)))

    between_positions = [[cos(e[p], e[q]) for p in range(len(e)) for q in range(p + 1, len(e))] for e in exacts]
    consecutive = [cos(x.sum(0), y.sum(0)) for x, y in zip(exacts, exacts[1:])]
    print("exact gradients, cosine between positions at each point: "
          + "; ".join(" ".join(f"{c:.2f}" for c in cs) for cs in between_positions), file=sys.stderr)
    print("exact gradients summed over positions, cosine between consecutive points: "
          + " ".join(f"{c:.2f}" for c in consecutive), file=sys.stderr)
    text = json.dumps({"trace": a.trace, "seed": a.seed, "variants": summary,
                       "exact_between_positions": between_positions, "exact_consecutive": consecutive}, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    print(json.dumps({v: {k: s[k] for k in ("cosine", "shortlist_gain")} for v, s in summary.items()}))


if __name__ == "__main__":
    main()
