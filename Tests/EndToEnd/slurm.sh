#!/usr/bin/env bash
# End-to-end against a real Slurm, not a mock: slurmctld and slurmd started
# here (one node, auth/none, unprivileged ports, configuration from
# ../shared/tools/slurm-local.conf), stopped however the test ends.
#   1. make all PROFILE=smoke LAUNCHER=slurm SHARDS=2 on the published-layout
#      test model: results.csv and every task log as the local run's;
#   2. a second make all submits nothing; make status says done;
#   3. the default model's dense MMLU in two shard jobs, one cancelled
#      (scancel) once it has logged an item: the launcher exits non-zero,
#      make status names the job, and a rerun resubmits only the cancelled
#      shard and the merge; the log then holds every item once, as locally.
# Usage: slurm.sh WORKROOT, a folder where smoke.sh left its local runs
# (hfbin/ and smollm2-135m/).
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCAL=${1:?usage: slurm.sh WORKROOT, where smoke.sh left its local runs}
fail() { echo "slurm-e2e: FAIL: $*" >&2; exit 1; }
t0=$(date +%s)

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "Slurm is not installed and this is not root: sudo apt-get install -y slurm-wlm"
  echo "slurm-e2e: installing slurm-wlm" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null; } || fail "apt-get install slurm-wlm failed"
fi

D=$(mktemp -d /tmp/kick-slurm.XXXXXX)
mkdir -p "$D/state" "$D/spool" "$D/log"
# two free ports, so a leftover daemon of another run cannot answer for ours
read -r P1 P2 < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
sed -e "s/HOSTNAME/$(hostname -s)/g" -e "s#\$DIR#$D#g" -e "s/^SlurmctldPort=.*/SlurmctldPort=$P1/" -e "s/^SlurmdPort=.*/SlurmdPort=$P2/" \
  ../shared/tools/slurm-local.conf > "$D/slurm.conf"
export SLURM_CONF=$D/slurm.conf
pids=()
stop() {
  scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_SLURM_DIR:-}" ] || rm -rf "$D"
}
trap stop EXIT
slurmctld -D -f "$SLURM_CONF" > "$D/log/ctld.out" 2>&1 & pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$D/log/d.out" 2>&1 & pids+=($!)
for _ in $(seq 1 120); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
  sleep 0.5
done
[ "$(sinfo -h -o %T 2>/dev/null)" = idle ] || { tail -5 "$D/log/ctld.log" "$D/log/d.log" >&2 || true; fail "the node did not become idle"; }
echo "slurm-e2e: slurmctld and slurmd up in $(( $(date +%s) - t0 )) s (ports $P1, $P2)" >&2

WR=$(mktemp -d /tmp/kick-slurm-work.XXXXXX)
MK=(make --no-print-directory PROFILE=smoke BUILD=debug WORKROOT="$WR" LAUNCHER=slurm SLURM_POLL=1)
HF=(MODEL=hfbin MODEL_DIR=../shared/golden/hf-real/hf-bin-f16)

# 1. the grid as Slurm jobs, two shards per task
t1=$(date +%s)
"${MK[@]}" "${HF[@]}" SHARDS=2 all > "$WR/run1.log" 2>&1 || { tail -30 "$WR/run1.log"; fail "make all LAUNCHER=slurm failed"; }
jobs=$(grep -c "^submitted job " "$WR/run1.log" || true)
echo "slurm-e2e: make all PROFILE=smoke LAUNCHER=slurm SHARDS=2 (hfbin): $jobs jobs, $(( $(date +%s) - t1 )) s" >&2
[ "$jobs" -eq 42 ] || fail "expected 42 jobs (ingest, 2 compress, 2 configs x 6 tasks x (2 shards + merge), 2 cost, report), submitted $jobs"
cmp "$LOCAL/hfbin/report/results.csv" "$WR/hfbin/report/results.csv" || fail "results.csv differs from the local run's"
python3 - "$LOCAL/hfbin/infer" "$WR/hfbin/infer" <<'PY' || fail "the sharded logs differ from the local run's"
import json, os, sys
local, slurm = sys.argv[1:]
strip = lambda l: {k: v for k, v in json.loads(l).items() if k not in ("seconds", "prefix_computed")}
for c in sorted(os.listdir(local)):
    for t in ["factoid", "mmlu", "icrqa", "summarization", "instruct", "perplexity"]:
        a, b = ([strip(l) for l in open(f"{d}/{c}/{t}.jsonl")] for d in (local, slurm))
        ids = [r["id"] for r in b]
        assert len(ids) == len(set(ids)), (c, t, "duplicate ids")
        assert sorted(map(json.dumps, a)) == sorted(map(json.dumps, b)), (c, t)
        sa, sb = (json.load(open(f"{d}/{c}/{t}.scores.json")) for d in (local, slurm))
        assert sa["metrics"] == sb["metrics"] and sa["items"] == sb["items"], (c, t)
PY

# 2. nothing left: a rerun submits nothing, and status says done
"${MK[@]}" "${HF[@]}" SHARDS=2 all > "$WR/run2.log" 2>&1 || { tail -20 "$WR/run2.log"; fail "second make all LAUNCHER=slurm failed"; }
! grep -q "^submitted job \|^queued already" "$WR/run2.log" || fail "a second run submitted: $(grep '^submitted job ' "$WR/run2.log" | head -3)"
"${MK[@]}" "${HF[@]}" SHARDS=2 status > "$WR/status.log" 2>&1 || { cat "$WR/status.log"; fail "make status failed"; }
[ "$(grep -c ' done' "$WR/status.log")" -eq 14 ] || { cat "$WR/status.log"; fail "make status does not show 14 rows done"; }

# 3. cancel one shard job midway: the default model's dense MMLU, from the
# local run's ingest and checkpoint (copied with their times)
S=$WR/smollm2-135m
mkdir -p "$S/compress"
cp -a "$LOCAL/smollm2-135m/ingest" "$S/"
cp -a "$LOCAL/smollm2-135m/compress/dense" "$S/compress/"
CANCEL=(CONFIG=dense TASKS=mmlu SHARDS=2)
"${MK[@]}" "${CANCEL[@]}" WAIT=0 infer > "$WR/cancel1.log" 2>&1 || { tail -20 "$WR/cancel1.log"; fail "make infer LAUNCHER=slurm failed"; }
[ "$(grep -c '^submitted job ' "$WR/cancel1.log")" -eq 3 ] || fail "expected 3 jobs (2 shards, merge): $(grep '^submitted' "$WR/cancel1.log")"
# the first shard job seen running with 1 to 3 of its 4 items logged
cancel_midway() {
python3 - "$1" <<'PY'
import json, subprocess, sys, time
s = sys.argv[1]
deadline = time.time() + 240
while time.time() < deadline:
    q = subprocess.run(["squeue", "--me", "-h", "-o", "%i|%T"], capture_output=True, text=True).stdout.split()
    running = {l.split("|")[0] for l in q if l.endswith("|RUNNING")}
    for i in (0, 1):
        r = json.load(open(f"{s}/slurm/jobs/infer/dense/mmlu.shard-{i}-of-2.scores.json.job"))
        try: n = sum(1 for _ in open(f"{s}/infer/dense/mmlu.shard-{i}-of-2.jsonl"))
        except FileNotFoundError: n = 0
        if r["id"] in running and 1 <= n < 4:
            subprocess.run(["scancel", r["id"]], check=True)
            print(r["id"], i, n)
            sys.exit(0)
    time.sleep(0.2)
sys.exit("no running shard job with a logged item to cancel")
PY
}
victim=$(cancel_midway "$S") || fail "could not cancel a shard job midway"
read -r vid vshard vlogged <<< "$victim"
echo "slurm-e2e: cancelled job $vid (dense mmlu shard $vshard/2) with $vlogged of 4 items logged" >&2
if .build/debug/kick-infer slurm-wait --work "$S" --interval 1 2> "$WR/wait.log"; then fail "slurm-wait exited 0 after a cancelled job"; fi
grep -q "job $vid .*failed (ended without an exit status" "$WR/wait.log" || { cat "$WR/wait.log"; fail "slurm-wait did not name the cancelled job"; }
[ -s "$S/infer/dense/mmlu.shard-$vshard-of-2.jsonl" ] || fail "the cancelled shard's log lost its items"
if "${MK[@]}" "${CANCEL[@]}" status > "$WR/status2.log" 2>&1; then fail "make status exited 0 with a failed job"; fi
grep -q "^dense .*mmlu .*failed .*shard $vshard: failed (job $vid, ended without an exit status" "$WR/status2.log" || { cat "$WR/status2.log"; fail "make status does not show the cancelled shard"; }
"${MK[@]}" "${CANCEL[@]}" infer > "$WR/cancel2.log" 2>&1 || { tail -20 "$WR/cancel2.log"; fail "the rerun after scancel failed"; }
[ "$(grep -c '^submitted job ' "$WR/cancel2.log")" -eq 2 ] || fail "the rerun should submit the cancelled shard and the merge: $(grep '^submitted' "$WR/cancel2.log")"
grep -q "^submitted job .* kick-smollm2-135m-infer-dense-mmlu-${vshard}of2" "$WR/cancel2.log" || fail "the rerun did not resubmit shard $vshard"
python3 - "$LOCAL/smollm2-135m/infer/dense" "$S/infer/dense" <<'PY' || fail "after the rerun the MMLU log differs from the local run's"
import json, sys
strip = lambda l: {k: v for k, v in json.loads(l).items() if k not in ("seconds", "prefix_computed")}
a, b = ([strip(l) for l in open(f"{d}/mmlu.jsonl")] for d in sys.argv[1:])
ids = [r["id"] for r in b]
assert len(ids) == len(set(ids)), "duplicate items"
assert sorted(map(json.dumps, a)) == sorted(map(json.dumps, b)), "records differ"
sa, sb = (json.load(open(f"{d}/mmlu.scores.json")) for d in sys.argv[1:])
assert sa["metrics"] == sb["metrics"] and sa["items"] == sb["items"]
PY

echo "slurm-e2e: ok ($(( $(date +%s) - t0 )) s)"
[ -n "${KEEP_SLURM_DIR:-}" ] || rm -rf "$WR"
