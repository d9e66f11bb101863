# SPDX-License-Identifier: MIT
"""Checks a parallel chapter's --dump (ch03_tensor_parallel, ch04_pipeline_parallel, ch05_sequence_parallel,
ch06_expert_parallel; dense or MoE):
every file there with the full, unsharded shape that config.json implies; and, given a second
directory written by ch01_reference_model for the same run, that the parallel run equals the serial one (inputs and initial
parameters exactly; logits, loss and gradients to 1e-5 and final parameters to 1e-4 relative L2).

Usage: check_dump.py DUMP [SERIAL_DUMP]     (exit 77 = skipped: no NumPy)
"""
import json
import os
import sys

try:
    import numpy as np
except ImportError:
    print("check_dump.py: NumPy is not installed; skipping")
    sys.exit(77)


def shapes(c):
    V, C, H, K, F, hd = c["vocab"], c["dim"], c["heads"], c["kv_heads"], c["ffn"], c["dim"] // c["heads"]
    s = {"embed_tokens.weight": (V, C), "norm.weight": (C,), "lm_head.weight": (V, C)}
    for l in range(c["layers"]):
        p = "layers.%d." % l
        s[p + "input_layernorm.weight"] = (C,)
        s[p + "post_attention_layernorm.weight"] = (C,)
        s[p + "self_attn.q_proj.weight"] = (H * hd, C)
        s[p + "self_attn.k_proj.weight"] = (K * hd, C)
        s[p + "self_attn.v_proj.weight"] = (K * hd, C)
        s[p + "self_attn.o_proj.weight"] = (C, H * hd)
        E, every = c.get("experts", 0), c.get("moe_every", 1)
        if E > 0 and l % every == every - 1:  # a MoE layer: the router and E experts
            s[p + "moe.router.weight"] = (E, C)
            for e in range(E):
                q = p + "moe.experts.%d." % e
                s[q + "gate_proj.weight"], s[q + "up_proj.weight"], s[q + "down_proj.weight"] = (F, C), (F, C), (C, F)
        else:
            s[p + "mlp.gate_proj.weight"] = (F, C)
            s[p + "mlp.up_proj.weight"] = (F, C)
            s[p + "mlp.down_proj.weight"] = (C, F)
    return s


def rel(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / nb if nb > 0 else np.linalg.norm(a)


def main():
    d = sys.argv[1]
    ref = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    c = json.load(open(os.path.join(d, "config.json")))
    assert c.get("complete") is True, "%s: config.json does not say complete: the run did not finish its dump" % d
    degrees = {k: c[k] for k in ("tp", "pp", "dp", "sp", "ep") if k in c}  # the layout's parallel degrees
    assert degrees and all(v >= 1 for v in degrees.values()) and c["data"] in ("stream", "fixed"), c
    B, T, V, steps = c["batch"], c["seq"], c["vocab"], c["steps"]
    load = lambda *p: np.load(os.path.join(d, *p))
    assert load("inputs.npy").shape == (B, T) and load("inputs.npy").dtype == np.int32
    assert load("targets.npy").shape == (B, T)
    assert load("logits.npy").shape == (B, T, V), load("logits.npy").shape
    assert load("loss.npy").shape == (steps,)
    for name, shape in shapes(c).items():
        for sub in ("params", "grads", "final"):
            a = load(sub, name + ".npy")
            assert a.shape == shape and a.dtype == np.float32, (sub, name, a.shape, shape)
    layout = ", ".join("%s %d" % kv for kv in degrees.items())
    print("%s: every file present with its full shape (%s)" % (d, layout))
    if ref is None:
        return 0
    rload = lambda *p: np.load(os.path.join(ref, *p))
    worst = {}

    def check(what, a, b, tol):
        e = rel(a, b)
        worst[what] = max(worst.get(what, 0.0), e)
        if e > tol:
            raise SystemExit("%s: relative error %.3g > %.3g" % (what, e, tol))

    for f in ["inputs.npy", "targets.npy"] + ["inputs_s%d.npy" % k for k in range(steps) if c["data"] == "stream"]:
        assert np.array_equal(load(f), rload(f)), f
    check("logits", load("logits.npy"), rload("logits.npy"), 1e-5)
    check("loss", load("loss.npy"), rload("loss.npy"), 1e-5)
    for name in shapes(c):
        check("params (exact)", load("params", name + ".npy"), rload("params", name + ".npy"), 0.0)
        check("grads", load("grads", name + ".npy"), rload("grads", name + ".npy"), 1e-5)
        check("final", load("final", name + ".npy"), rload("final", name + ".npy"), 1e-4)
    print("parallel dump == serial dump: " + ", ".join("%s %.2g" % kv for kv in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
