#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks a ch01_reference_model --dump DIR against docs/reference.md with NumPy alone.

An independent NumPy (float64) implementation of the reference model (docs/reference.md, "The reference model"),
dense and MoE (top-k with ties to the lower index, renormalised gates, per-sequence capacity,
Switch aux loss averaged over sequences as nn/moe.hpp documents), recomputes from
params/*.npy and inputs.npy:
  - the step-0 logits (vs logits.npy, relative L2 error <= 1e-5),
  - the step-0 loss (vs loss.npy[0], relative error <= 1e-5),
  - the lm_head gradient dlogits^T h (vs grads/lm_head.weight.npy, <= 1e-5),
  - with steps == 1, the first AdamW step from grads/ (torch.optim.AdamW semantics) vs final/
    (<= 1e-5 on the parameters, <= 1e-4 on the update final - params).
It also checks every file's presence, dtype and shape against config.json.
Usage: check_dump.py DIR     exit 0 when every check passes, 1 otherwise (one line per check).
"""
import json
import math
import os
import sys

import numpy as np

FAILED = []


def check(name, ok, detail=""):
    print(("ok    " if ok else "FAIL  ") + name + (": " + detail if detail else ""))
    if not ok:
        FAILED.append(name)


def rel_err(ours, ref):
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(ours - ref) / den) if den > 0 else float(np.linalg.norm(ours))


def param_specs(c):
    """The parameter names and shapes of docs/reference.md, in the model's order."""
    V, C, F, L, H, Hkv = c["vocab"], c["dim"], c["ffn"], c["layers"], c["heads"], c["kv_heads"]
    hd = C // H
    moe = set(c.get("moe_layers", []))
    out = [("embed_tokens.weight", (V, C))]
    for l in range(L):
        p = f"layers.{l}."
        out += [(p + "input_layernorm.weight", (C,)), (p + "self_attn.q_proj.weight", (H * hd, C)),
                (p + "self_attn.k_proj.weight", (Hkv * hd, C)), (p + "self_attn.v_proj.weight", (Hkv * hd, C)),
                (p + "self_attn.o_proj.weight", (C, H * hd)), (p + "post_attention_layernorm.weight", (C,))]
        mlps = [p + "mlp"] if l not in moe else [p + f"moe.experts.{e}" for e in range(c["experts"])]
        if l in moe:
            out.append((p + "moe.router.weight", (c["experts"], C)))
        for m in mlps:
            out += [(m + ".gate_proj.weight", (F, C)), (m + ".up_proj.weight", (F, C)), (m + ".down_proj.weight", (C, F))]
    out += [("norm.weight", (C,)), ("lm_head.weight", (V, C))]
    return out


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, theta):  # x [B, T, nh, hd], positions 0..T-1
    T, hd = x.shape[1], x.shape[3]
    inv = theta ** (-np.arange(0, hd // 2, dtype=np.float64) * 2.0 / hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]            # [T, hd/2]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], axis=-1)[None, :, None, :]
    sin = np.concatenate([np.sin(ang), np.sin(ang)], axis=-1)[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + np.concatenate([-x2, x1], axis=-1) * sin


def attention(a, P, pre, c):
    B, T, C = a.shape
    H, Hkv = c["heads"], c["kv_heads"]
    hd = C // H
    q = (a @ P[pre + "q_proj.weight"].T).reshape(B, T, H, hd)
    k = (a @ P[pre + "k_proj.weight"].T).reshape(B, T, Hkv, hd)
    v = (a @ P[pre + "v_proj.weight"].T).reshape(B, T, Hkv, hd)
    q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
    rep = H // Hkv
    k, v = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)             # head h reads kv head h // rep
    s = np.einsum("bthd,bshd->bhts", q, k) / math.sqrt(hd)
    s = np.where(np.tril(np.ones((T, T), dtype=bool))[None, None], s, -np.inf)
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    o = np.einsum("bhts,bshd->bthd", s, v).reshape(B, T, H * hd)
    return o @ P[pre + "o_proj.weight"].T


def swiglu(x, P, pre):
    g, u = x @ P[pre + "gate_proj.weight"].T, x @ P[pre + "up_proj.weight"].T
    return (g / (1.0 + np.exp(-g)) * u) @ P[pre + "down_proj.weight"].T


def moe(m, P, pre, c):
    """Returns (y, aux) for one MoE layer; routing per sequence of T tokens."""
    B, T, C = m.shape
    E, k, cf = c["experts"], c["topk"], c["capacity_factor"]
    logits = m @ P[pre + "router.weight"].T                                # [B, T, E]
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    cap = math.ceil(cf * k * T / E) if cf > 0 else T * k
    y = np.zeros_like(m)
    aux = 0.0
    for b in range(B):
        used, chosen = np.zeros(E, dtype=np.int64), np.zeros(E, dtype=np.int64)
        for t in range(T):
            picks = sorted(range(E), key=lambda e: (-p[b, t, e], e))[:k]   # ties: lower index first
            gates = p[b, t, picks] / p[b, t, picks].sum()
            for e, gate in zip(picks, gates):
                chosen[e] += 1
                if used[e] < cap:                                          # first come, first served
                    used[e] += 1
                    y[b, t] += gate * swiglu(m[b, t][None], P, pre + f"experts.{e}.")[0]
        f = chosen / (T * k)
        aux += c["aux_coef"] * E * float(np.sum(f * p[b].mean(axis=0)))
    return y, aux / B


def forward(P, tokens, c):
    """Logits [B, T, V], the final-norm output h [B, T, C], the summed aux loss."""
    eps, moe_layers = c["norm_eps"], set(c.get("moe_layers", []))
    x = P["embed_tokens.weight"][tokens]
    aux = 0.0
    for l in range(c["layers"]):
        pre = f"layers.{l}."
        x = x + attention(rmsnorm(x, P[pre + "input_layernorm.weight"], eps), P, pre + "self_attn.", c)
        m = rmsnorm(x, P[pre + "post_attention_layernorm.weight"], eps)
        if l in moe_layers:
            f, a = moe(m, P, pre + "moe.", c)
            aux += a
        else:
            f = swiglu(m, P, pre + "mlp.")
        x = x + f
    h = rmsnorm(x, P["norm.weight"], eps)
    return h @ P["lm_head.weight"].T, h, aux


def load(path, dtype, shape):
    if not os.path.exists(path):
        check(os.path.basename(path) + " exists", False, path)
        return None
    a = np.load(path)
    ok = a.dtype == np.dtype(dtype) and tuple(a.shape) == tuple(shape)
    if not ok:
        check(path, False, f"{a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    return a


def main():
    if len(sys.argv) != 2:
        print("usage: check_dump.py DIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as fh:
        c = json.load(fh)
    keys = ["vocab", "seq", "dim", "heads", "kv_heads", "ffn", "layers", "batch", "steps", "lr", "seed", "experts",
            "topk", "capacity_factor", "aux_coef", "beta1", "beta2", "eps", "weight_decay", "rope_theta", "norm_eps",
            "moe_layers", "data"]
    missing = [k for k in keys if k not in c]
    check("config.json has the keys of docs/reference.md, 'The dump'", not missing, "missing " + ", ".join(missing))
    check("config.json says the dump is complete", c.get("complete") is True,
          "\"complete\" is %r: the run stopped before it wrote every array" % c.get("complete"))
    B, T, V, steps = c["batch"], c["seq"], c["vocab"], c["steps"]

    specs = param_specs(c)
    P, G, Fin = {}, {}, {}
    for sub, store in (("params", P), ("grads", G), ("final", Fin)):
        for name, shape in specs:
            a = load(os.path.join(d, sub, name + ".npy"), np.float32, shape)
            if a is not None:
                store[name] = a
        extra = sorted(set(f[:-4] for f in os.listdir(os.path.join(d, sub))) - set(n for n, _ in specs))
        check(f"{sub}/ holds exactly the {len(specs)} parameters of the model", len(store) == len(specs) and not extra,
              f"{len(store)} found, extra: {extra}")
    tokens = load(os.path.join(d, "inputs.npy"), np.int32, (B, T))
    targets = load(os.path.join(d, "targets.npy"), np.int32, (B, T))
    logits = load(os.path.join(d, "logits.npy"), np.float32, (B, T, V))
    loss = load(os.path.join(d, "loss.npy"), np.float32, (steps,))
    if c["data"] == "stream":
        for s in range(steps):
            load(os.path.join(d, f"inputs_s{s}.npy"), np.int32, (B, T))
            load(os.path.join(d, f"targets_s{s}.npy"), np.int32, (B, T))
    if FAILED:
        return 1
    check("targets are the inputs shifted by one", bool(np.all(targets[:, :-1] == tokens[:, 1:])))
    check("tokens in [0, V)", bool(tokens.min() >= 0 and tokens.max() < V and targets.max() < V))

    P64 = {k: v.astype(np.float64) for k, v in P.items()}
    ref_logits, h, aux = forward(P64, tokens, c)
    e = rel_err(logits, ref_logits)
    check("step-0 logits == NumPy forward", e <= 1e-5, f"rel err {e:.3g}")
    z = ref_logits - ref_logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    ce = -np.mean(np.take_along_axis(logp, targets[..., None].astype(np.int64), axis=-1))
    if steps >= 1:
        e = abs(float(loss[0]) - (ce + aux)) / (ce + aux)
        check("step-0 loss == NumPy cross-entropy + aux", e <= 1e-5,
              f"{float(loss[0]):.7f} vs {ce + aux:.7f} (aux {aux:.3g}), rel err {e:.3g}")
    dlogits = (np.exp(logp) - np.eye(V)[targets]) / (B * T)
    dlm = dlogits.reshape(-1, V).T @ h.reshape(-1, c["dim"])
    e = rel_err(G["lm_head.weight"], dlm)
    check("step-0 lm_head gradient == NumPy dlogits^T h", e <= 1e-5, f"rel err {e:.3g}")

    if steps == 1:
        lr, b1, b2, eps, wd = c["lr"], c["beta1"], c["beta2"], c["eps"], c["weight_decay"]
        worst_p = worst_u = 0.0
        for name, _ in specs:
            p, g = P64[name], G[name].astype(np.float64)
            p1 = p - lr * wd * p                                          # decoupled weight decay
            m, v = (1 - b1) * g, (1 - b2) * g * g                          # moments from zero
            p1 = p1 - (lr / (1 - b1)) * m / (np.sqrt(v) / math.sqrt(1 - b2) + eps)
            worst_p = max(worst_p, rel_err(Fin[name], p1))
            worst_u = max(worst_u, rel_err(Fin[name].astype(np.float64) - p, p1 - p))
        check("final == params after one torch AdamW step", worst_p <= 1e-5, f"worst rel err {worst_p:.3g}")
        check("final - params == the AdamW update", worst_u <= 1e-4, f"worst rel err {worst_u:.3g}")
    else:
        print(f"skip  the AdamW check needs a dump of exactly one step (this one has {steps})")
    print("check_dump: " + ("PASSED" if not FAILED else f"FAILED ({len(FAILED)} check(s))"))
    return 0 if not FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
