#!/usr/bin/env bash
# The same checkpoint bytes on every machine: compresses a small random
# Llama (shapes with partial panels and groups) with SparseGPT 50%, GPTQ
# w4g128 and Wanda 2:4 under different OpenBLAS thread counts, kernel
# choices and OpenBLAS core types, and requires every model.kick to be
# byte-identical to the first. usage: determinism.sh WORKDIR [BIN]
set -euo pipefail
cd "$(dirname "$0")/../.."
WR=$1/determinism
BIN=${2:-.build/debug}
mkdir -p "$WR"
fail() { echo "determinism: FAIL: $*" >&2; exit 1; }
t0=$(date +%s)
M=$WR/model
[ -f "$M/pytorch_model.bin.index.json" ] || "$BIN/kick-ingest" synthetic-model --out "$M" --dtype f32 --layers 2 --hidden 200 \
  --ffn 536 --heads 4 --vocab 2000 --seed 7 >/dev/null
[ -f "$WR/calib.tok" ] || "$BIN/kick-ingest" calib --model "$M" --samples 12 --length 96 --seed 0 --out "$WR/calib.tok" >/dev/null
variants=("" "OPENBLAS_NUM_THREADS=1" "OPENBLAS_NUM_THREADS=2" "KICK_NO_AVX512=1" "OPENBLAS_CORETYPE=Haswell")
for method in "sparsegpt --sparsity 0.5" "gptq --bits 4 --group-size 128" "wanda --pattern 2:4"; do
  first=""
  for v in "${variants[@]}"; do
    out=$WR/out-$(echo "$method" | tr -c 'a-z0-9' _)-$(echo "${v:-default}" | tr -c 'A-Za-z0-9' _)
    rm -rf "$out"
    env $v "$BIN/kick-compress" model --model "$M" --calib "$WR/calib.tok" --method $method --out "$out" >/dev/null 2>"$out.err" \
      || { cat "$out.err"; fail "kick-compress $method with ${v:-the default environment} failed"; }
    h=$(sha256sum "$out/model.kick" | cut -d' ' -f1)
    if [ -z "$first" ]; then first=$h; base=${v:-default}
    elif [ "$h" != "$first" ]; then fail "$method: model.kick differs between ${base} ($first) and $v ($h)"; fi
  done
  echo "determinism: $method: model.kick $first under ${#variants[@]} environments" >&2
done
echo "determinism: took $(( $(date +%s) - t0 )) s" >&2
