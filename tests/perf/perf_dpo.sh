#!/usr/bin/env bash
# sima-dpo training throughput on the tiny golden model: training tokens/s
# (prompt + response tokens of chosen and rejected, per optimizer step),
# mean step time and peak resident memory per rank, for LoRA r 16 and 128,
# micro-batch 1 and 4, 1 and 2 ranks.
#   tests/perf/perf_dpo.sh [BUILD_DIR] [N_PROMPTS] [NEW_TOKENS]
# Pairs: the demo prompts repeated, responses from sima-gen, verdicts from
# the helper mode of test_pairs_logic, pairs from sima-pairs (no reference
# log-probs: the tool computes them with the adapter off, one extra forward).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
n=${2:-48}
new=${3:-64}
model=$root/tests/golden/tiny-llava
bin=$build/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi() { mpirun --oversubscribe --allow-run-as-root "$@"; }

python3 - "$root/data/demo/prompts.jsonl" "$tmp/p.jsonl" "$n" <<'PY'
import json, sys
src = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[3])):
        r = dict(src[i % len(src)]); r["id"] = "p%d" % i; f.write(json.dumps(r) + "\n")
PY
"$bin/sima-prep" import --format sima "$tmp/p.jsonl" --image-root "$root/data/demo/images" \
  --out "$tmp/prompts.h5" --quiet
mpi -np 2 --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
  --out "$tmp/responses.h5" --max-new-tokens "$new" --quiet 2>/dev/null
"$build/tests/test_pairs_logic" --make-verdicts "$tmp/responses.h5" "$tmp/verdicts.h5"
mpi -np 1 "$bin/sima-pairs" --model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/responses.h5" \
  --verdicts "$tmp/verdicts.h5" --out "$tmp/pairs.h5" --quiet 2>/dev/null
echo "== $n prompts, responses up to $new tokens (OMP threads: ${OMP_NUM_THREADS:-default})"
for r in 16 128; do
  for micro in 1 4; do
    for np in 1 2; do
      rm -rf "$tmp/out"
      mpi -np $np --bind-to none /usr/bin/time -f "peak_rss_kb %M" "$bin/sima-dpo" --model "$model" \
        --pairs "$tmp/pairs.h5" --prompts "$tmp/prompts.h5" --out "$tmp/out" --lora-r $r \
        --lora-alpha $((2 * r)) --epochs 1 --micro-batch $micro --save-every 0 >"$tmp/log" 2>&1
      done_line=$(grep 'done:' "$tmp/log")
      step_ms=$(echo "$done_line" | grep -o 'mean step [0-9.]* ms' | grep -o '[0-9.]*')
      tps=$(echo "$done_line" | grep -o '[0-9]* training tokens/s' | grep -o '^[0-9]*')
      steps=$(echo "$done_line" | grep -o 'done: [0-9]* steps' | grep -o '[0-9]*')
      rss=$(grep -o 'peak_rss_kb [0-9]*' "$tmp/log" | awk '{m = $2 > m ? $2 : m} END {printf "%.0f", m / 1024}')
      echo "sima-dpo r $r micro $micro -np $np: $steps steps, mean step $step_ms ms, $tps training tokens/s, peak RSS $rss MiB per rank"
    done
  done
done
