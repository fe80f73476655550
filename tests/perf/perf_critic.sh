#!/usr/bin/env bash
# sima-critic throughput: critic prompt tokens/s (prefill dominates: long
# prompts, short outputs) on the tiny model with 2 ranks.
#   tests/perf/perf_critic.sh [BUILD_DIR] [N_PROMPTS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
n=${2:-64}
. "$root/tests/perf/lib.sh"
demo_prompts "$n" "$tmp/prompts.h5"
mpi -np 2 --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
  --out "$tmp/resp.h5" --max-new-tokens 32 --quiet
start=$(date +%s.%N)
mpi -np 2 --bind-to none "$bin/sima-critic" --model "$model" --prompts "$tmp/prompts.h5" \
  --responses "$tmp/resp.h5" --out "$tmp/v.h5" --max-new-tokens 32 --quiet
end=$(date +%s.%N)
tokens=$(h5dump -d /verdicts/prompt_tokens -y -w 0 "$tmp/v.h5" | sed -n '/DATA {/,/}/p' |
         tr -c '0-9\n,' ' ' | tr ',' '\n' | awk '{s += $1} END {print s}')
python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print('sima-critic -np 2: %d judgements, %d critic prompt tokens in %.2f s = %.0f prompt tokens/s (wall, model loading included), up to 32 new tokens each' % (int(sys.argv[4]), n, t, n/t))" "$start" "$end" "$tokens" "$n"
