#!/usr/bin/env bash
# sima-pairs --ref-logps throughput: the reference model's log-probs of the
# chosen and rejected responses, in tokens scored per second (prompt tokens
# twice, plus both responses), on the tiny golden model with 1 and 2 ranks.
#   tests/perf/perf_pairs.sh [BUILD_DIR] [N_PROMPTS] [NEW_TOKENS]
# Prompts: the demo prompts repeated; responses from sima-gen (2 candidates);
# verdicts from the helper mode of test_pairs_logic (2/3 of the prompts give
# a kept pair). Wall times run from start to the complete file, model
# loading included; the tool's own line gives the same rate over its run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
n=${2:-96}
new=${3:-128}
. "$root/tests/perf/lib.sh"

demo_prompts "$n" "$tmp/prompts.h5"
mpi -np 2 --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
  --out "$tmp/responses.h5" --max-new-tokens "$new" --quiet 2>/dev/null
"$build/tests/test_pairs_logic" --make-verdicts "$tmp/responses.h5" "$tmp/verdicts.h5"
echo "== $n prompts, responses up to $new tokens (OMP threads: ${OMP_NUM_THREADS:-default})"
for np in 1 2; do
  for batch in 1 8; do
    rm -f "$tmp/pairs$np.h5"
    start=$(date +%s.%N)
    mpi -np $np --bind-to none "$bin/sima-pairs" --model "$model" --prompts "$tmp/prompts.h5" \
      --responses "$tmp/responses.h5" --verdicts "$tmp/verdicts.h5" --out "$tmp/pairs$np.h5" \
      --ref-logps --batch $batch --chunk 16 2>"$tmp/log"
    end=$(date +%s.%N)
    tokens=$(grep -o 'over [0-9]* tokens' "$tmp/log" | grep -o '[0-9]*')
    pairs=$(grep -o 'done: [0-9]* pairs' "$tmp/log" | grep -o '[0-9]*')
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print('sima-pairs --ref-logps -np %s --batch %s: %s pairs, %s tokens scored in %.2f s = %.0f tokens/s (wall)' % (sys.argv[3], sys.argv[5], sys.argv[6], sys.argv[4], t, int(sys.argv[4])/t))" \
      "$start" "$end" $np "$tokens" $batch "$pairs"
  done
done
h5diff -q "$tmp/pairs1.h5" "$tmp/pairs2.h5" /pairs /pairs && echo "-np 1 and -np 2 outputs identical"
