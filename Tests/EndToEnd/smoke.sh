#!/usr/bin/env bash
# End-to-end: `make all PROFILE=smoke` on the real default model, in a
# scratch work folder. Checks that results.csv holds every task for both
# configurations, that results.md and the plots exist, that a second run
# does nothing, and that deleting one configuration's scores redoes only it.
set -euo pipefail
cd "$(dirname "$0")/../.."
WR=${E2E_WORKROOT:-$(mktemp -d /tmp/kick-e2e.XXXXXX)}
mkdir -p "$WR"
W=$WR/smollm2-135m
MAKEARGS=(--no-print-directory PROFILE=smoke BUILD=debug WORKROOT="$WR" ESTIMATE_ITEMS=2)
fail() { echo "e2e: FAIL: $*" >&2; exit 1; }
t0=$(date +%s)

make "${MAKEARGS[@]}" all > "$WR/run1.log" 2>&1 || { tail -30 "$WR/run1.log"; fail "make all PROFILE=smoke failed"; }
echo "e2e: make all PROFILE=smoke took $(( $(date +%s) - t0 )) s" >&2

# the ingest manifests count the whole data sets, whatever the profile draws
python3 - "$W/ingest/tasks" <<'PY' || fail "ingest manifests do not report the expected counts"
import json, sys
want = {"mmlu": 14042, "factoid": 11313, "icrqa": 6500 + 11313, "summarization": 1001, "instruct": 80, "perplexity": 101}
for t, n in want.items():
    m = json.load(open(f"{sys.argv[1]}/{t}.jsonl.manifest.json"))
    assert m["items_available"] == n, (t, m["items_available"], n)
m = json.load(open(f"{sys.argv[1]}/mmlu.jsonl.manifest.json"))
assert m["schema"] == "kick.task-manifest/1"
assert m["counts"]["subjects"] == 57 and m["sources"]["mmlu"]["skipped_by_reason"] == {"header row": 2}
c = json.load(open(f"{sys.argv[1]}/summarization.jsonl.manifest.json"))["counts"]
assert {k: v for k, v in c.items() if k.startswith("bucket:")} == {"bucket:small": 666, "bucket:mid": 294, "bucket:large": 41}, c
PY

grep -q "estimated wall time" "$WR/run1.log" || fail "make all printed no estimate"
[ -s "$W/estimate.json" ] || fail "no $W/estimate.json"

csv=$W/report/results.csv
[ -s "$csv" ] || fail "no $csv"
[ -s "$W/report/results.md" ] || fail "no results.md"
configs=$(python3 -c 'import json; print(" ".join(json.load(open("profiles/smoke.json"))["configs"]))')
for c in $configs; do
  for t in factoid mmlu icrqa summarization instruct perplexity; do
    grep -q "^smollm2-135m,$c,[^,]*,[^,]*,[^,]*,[^,]*,$t," "$csv" || fail "results.csv has no $t rows for $c"
  done
done
# the cost stage: each checkpoint's bench result, in the report's Cost table
python3 - "$W" $configs <<'PY' || fail "the cost stage's results are missing or wrong"
import json, sys
w, configs = sys.argv[1], sys.argv[2:]
md = open(f"{w}/report/results.md").read()
assert "resident weight MB" in md, "no Cost table"
for c in configs:
    r = json.load(open(f"{w}/cost/{c}.json"))
    assert r["prefill_tokens"] == 512 and r["batch"] == 16 and r["decode_tokens_per_s"] > 0 and r["decode_from_empty_tokens_per_s"] > 0, (c, r)
    assert f"| {c} | " in md and f"{r['weight_mb']:.1f}" in md, (c, r["weight_mb"])
# the default model's Q4_1/Q8_0 blocks stay codes: well under half of float32's 513 MB
assert json.load(open(f"{w}/cost/dense.json"))["weight_mb"] < 150
PY
if command -v gnuplot >/dev/null; then
  for p in factoid mmlu perplexity; do [ -s "$W/report/plots/$p.svg" ] || fail "no plot $p.svg"; done
  grep -q "plots/perplexity.svg" "$W/report/results.md" || fail "results.md does not link the plots"
fi

# a second run does nothing
find "$W" -type f -newer "$W/report/results.md" > /dev/null
stamp=$WR/stamp; touch "$stamp"; sleep 1
make "${MAKEARGS[@]}" all > "$WR/run2.log" 2>&1 || fail "second make all failed"
# (the output locks record each run's pid; they are not artifacts)
changed=$(find "$W" -type f -newer "$stamp" ! -name '.kick.lock' ! -name '.*.lock' | wc -l)
[ "$changed" -eq 0 ] || fail "a second run changed $changed files: $(find "$W" -type f -newer "$stamp" ! -name '.kick.lock' ! -name '.*.lock' | head -5)"
! grep -qE "kick-compress |kick-infer run " "$WR/run2.log" || fail "a second run ran a stage: $(grep -E 'kick-compress |kick-infer run ' "$WR/run2.log" | head -2)"
grep -q "estimate: nothing left to run" "$WR/run2.log" || fail "the second run's estimate did not find everything done"

# delete one configuration's scores: only that configuration is redone
victim=$(echo $configs | awk '{print $2}')
rm "$W/infer/$victim/"*.scores.json
make "${MAKEARGS[@]}" all > "$WR/run3.log" 2>&1 || fail "third make all failed"
ran=$(grep -E "kick-infer run" "$WR/run3.log" || true)
[ "$(echo "$ran" | grep -c "config $victim ")" -eq 6 ] || fail "expected 6 kick-infer runs of $victim, got: $ran"
[ "$(echo "$ran" | grep -vc "config $victim ")" -eq 0 ] || fail "other configurations were rerun: $ran"
! grep -q "kick-compress" "$WR/run3.log" || fail "compression was redone"

# item sharding through the command line: two shards of dense's factoid
# and perplexity runs, merged, score exactly as the unsharded run
S=$WR/sharded/dense; mkdir -p "$S"
ck=$W/compress/dense/model.kick
for i in 0 1; do
  .build/debug/kick-infer run --model "$ck" --ingest "$W/ingest" --config dense --profile smoke --tasks factoid,perplexity --out "$S" --shard $i/2 > /dev/null 2>> "$WR/shard.log" \
    || { tail -5 "$WR/shard.log"; fail "kick-infer run --shard $i/2 failed"; }
done
.build/debug/kick-infer merge --model "$ck" --ingest "$W/ingest" --config dense --profile smoke --tasks factoid,perplexity --out "$S" --shards 2 > /dev/null 2>> "$WR/shard.log" \
  || { tail -5 "$WR/shard.log"; fail "kick-infer merge failed"; }
python3 - "$W/infer/dense" "$S" <<'PY' || fail "sharded scores differ from the unsharded run's"
import json, sys
for t in ["factoid", "perplexity"]:
    a, b = (json.load(open(f"{d}/{t}.scores.json")) for d in sys.argv[1:])
    assert a["metrics"] == b["metrics"] and a["items"] == b["items"], t
    strip = lambda l: {k: v for k, v in json.loads(l).items() if k not in ("seconds", "prefix_computed")}
    la, lb = ([strip(l) for l in open(f"{d}/{t}.jsonl")] for d in sys.argv[1:])
    assert sorted(map(json.dumps, la)) == sorted(map(json.dumps, lb)), t
PY

# a published-layout folder (PyTorch .bin shards + index, SentencePiece
# tokenizer.model, float16) through every stage, read in place
t1=$(date +%s)
make "${MAKEARGS[@]}" MODEL=hfbin MODEL_DIR=../shared/golden/hf-real/hf-bin-f16 all > "$WR/hfbin.log" 2>&1 \
  || { tail -30 "$WR/hfbin.log"; fail "make all MODEL=hfbin failed"; }
H=$WR/hfbin
[ -s "$H/report/results.md" ] || fail "no report for hfbin"
python3 - "$H" "$configs" <<'PY' || fail "hfbin: model.json or results.csv incomplete"
import csv, json, sys
m = json.load(open(f"{sys.argv[1]}/ingest/model.json"))
names = [f["name"] for f in m["files"]]
assert "pytorch_model-00001-of-00002.bin" in names and "tokenizer.model" in names, names
assert all(len(f["sha256"]) == 64 for f in m["files"])
rows = list(csv.DictReader(open(f"{sys.argv[1]}/report/results.csv")))
for c in sys.argv[2].split():
    for t in ["factoid", "mmlu", "icrqa", "summarization", "instruct", "perplexity"]:
        assert any(r["config"] == c and r["task"] == t for r in rows), (c, t)
PY
echo "e2e: make all MODEL=hfbin (published .bin layout) took $(( $(date +%s) - t1 )) s" >&2

echo "e2e: ok ($(( $(date +%s) - t0 )) s; $(wc -l < "$csv") result rows)"
[ -n "${E2E_WORKROOT:-}" ] || rm -rf "$WR"
