"""Reads `make bench-block-reference`'s lines (kick-compress bench-block JSON, then
ref_block_speed.py JSON, per round) and prints kick / reference per method and
round, min-max, with the seconds behind them."""
import json, sys
pairs = {"sparsegpt-unstructured-50": "sparsegpt", "gptq-w4g128": "gptq-w4-g128",
         "wanda-unstructured-50": "wanda", "sparsegpt-2of4": "sparsegpt-2:4"}
rounds, kick = [], {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if "seconds_per_block" in d:
        rounds.append((kick, d["seconds_per_block"]))
        kick = {}
    else:
        kick[d["config"]] = d
if not rounds:
    sys.exit("block_ratios: no complete round (kick lines followed by a reference line)")
print(f"one SmolLM2 block, 128 x 512 calibration tokens, {len(rounds)} alternating rounds")
print("| method | kick s (forward / statistics / walk) | reference s | kick / reference |")
print("|---|---|---|---|")
for k, r in pairs.items():
    got = [(kk[k], ref[r]) for kk, ref in rounds if k in kk and r in ref]
    if not got:
        continue
    ks = [g[0]["block_seconds"] for g in got]
    parts = "; ".join(f'{g[0]["block_seconds"]:.2f} ({g[0]["forward_seconds"]:.2f} / {g[0]["statistics_seconds"]:.2f} / {g[0]["walk_seconds"]:.2f})' for g in got)
    rs = [g[1] for g in got]
    ratios = [a / b for a, b in zip(ks, rs)]
    print(f"| {k} | {parts} | {min(rs):.2f}-{max(rs):.2f} | {min(ratios):.2f}-{max(ratios):.2f}x |")
