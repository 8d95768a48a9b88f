"""Reads `make bench-llama`'s lines, `<round> <who> <form> <json>`: kick-infer
bench results, llama-bench (-o json) and llama-batched-bench (jsonl) results,
measured alternately in the same rounds on one machine. Prints each figure's
range over the rounds, and kick / llama.cpp per round (min-max) against the
targets of the issue on compressed execution."""
import json, sys
from collections import defaultdict

fig = defaultdict(dict)  # (who, form, what) -> {round: tokens/s}
for line in sys.stdin:
    parts = line.strip().split(" ", 3)
    if len(parts) < 4 or not parts[3].startswith(("{", "[")):
        continue
    r, who, form, text = int(parts[0]), parts[1], parts[2], parts[3]
    d = json.loads(text)
    if who == "kick":
        fig[("kick", form, "pp512")][r] = d["prefill_tokens_per_s"]
        # llama-bench's tg128 decodes from an empty cache: the same here
        fig[("kick", form, "tg128")][r] = d.get("decode_from_empty_tokens_per_s", d["decode_tokens_per_s"])
        fig[("kick", form, "b32")][r] = d["batch_decode_tokens_per_s"]
        fig[("kick", form, "MB")][r] = d["weight_mb"]
    elif who == "llama":
        for t in d:
            what = "pp512" if t["n_prompt"] > 0 and t["n_gen"] == 0 else "tg128" if t["n_gen"] > 0 and t["n_prompt"] == 0 else None
            if what:
                fig[("llama", form, what)][r] = t["avg_ts"]
    elif who == "llamab":
        fig[("llama", form, "b32")][r] = d["speed_tg"]

def rng(xs):
    return f"{min(xs):.1f}–{max(xs):.1f}" if xs else "—"

if not fig:
    sys.exit("llama_ratios: no results read")
print("tokens/s per round, min–max (SmolLM2-135M, 2 threads):")
print("| engine | weights | resident MB | prefill pp512 | decode tg128 | 32-sequence decode |")
print("|---|---|---|---|---|---|")
for who, form in sorted({(k[0], k[1]) for k in fig}):
    cells = [rng(list(fig[(who, form, w)].values())) for w in ("pp512", "tg128", "b32")]
    mb = rng(list(fig[(who, form, "MB")].values())) if who == "kick" else "—"
    print(f"| {who} | {form} | {mb} | " + " | ".join(cells) + " |")

targets = [
    ("int4 decode", ("kick", "int4", "tg128"), ("llama", "Q4_1", "tg128"), 1.1),
    ("int4 prefill", ("kick", "int4", "pp512"), ("llama", "Q4_1", "pp512"), 2.0),
    ("f16 decode", ("kick", "f16", "tg128"), ("llama", "F16", "tg128"), 1.0),
    ("int4 32-sequence decode", ("kick", "int4", "b32"), ("llama", "Q4_1", "b32"), 3.0),
    ("f32 prefill", ("kick", "f32", "pp512"), ("llama", "F32", "pp512"), 1.25),
    ("f32 decode", ("kick", "f32", "tg128"), ("llama", "F32", "tg128"), 1.05),
    ("2:4 decode against kick's own f16 dense", ("kick", "2of4-f16", "tg128"), ("kick", "f16", "tg128"), 1.3),
]
print("\nratios per round, min–max:")
print("| kick | against | ratio | target | met |")
print("|---|---|---|---|---|")
for name, a, b, want in targets:
    xs = [fig[a][r] / fig[b][r] for r in fig[a] if r in fig[b] and fig[b][r] > 0]
    if not xs:
        continue
    met = "yes" if min(xs) >= want else "no" if max(xs) < want else "in some rounds"
    print(f"| {name} | {b[0]} {b[1]} {b[2]} | {min(xs):.2f}–{max(xs):.2f}× | ≥ {want}× | {met} |")
