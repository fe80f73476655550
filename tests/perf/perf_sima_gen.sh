#!/usr/bin/env bash
# sima-gen's overhead over the engine, and the time to resume after a kill.
#   tests/perf/perf_sima_gen.sh [BUILD_DIR] [N_PROMPTS]
# Prints: the engine's own throughput on the prompts (perf_engine, one call),
# sima-gen's end-to-end throughput with 1 and 2 ranks on the same prompts and
# settings (wall time from start to the complete file, model loading
# included), and the wall time of a rerun after kill -9 (which regenerates
# only the chunks in flight).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
n=${2:-64}
. "$root/tests/perf/lib.sh"

demo_prompts "$n" "$tmp/prompts.h5"
C=2 NEW=64 B=8
echo "== $n prompts x $C candidates, up to $NEW new tokens, batch $B (OMP threads: ${OMP_NUM_THREADS:-default})"
"$build/perf/perf_engine" "$model" "$tmp/prompts.h5" $C $NEW $B 2>/dev/null
for np in 1 2; do
  start=$(date +%s.%N)
  mpi -np $np --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
    --out "$tmp/r$np.h5" --candidates $C --max-new-tokens $NEW --batch $B 2>"$tmp/log$np"
  end=$(date +%s.%N)
  tokens=$(grep -o '[0-9]* new tokens in' "$tmp/log$np" | grep -o '^[0-9]*')
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print('sima-gen -np %s: %s new tokens in %.2f s = %.0f new tokens/s (wall, start to complete file)' % (sys.argv[3], sys.argv[4], t, int(sys.argv[4])/t))" "$start" "$end" $np "$tokens"
done

# resume: kill -9 once some chunks are committed, time the rerun to completion
setsid mpirun --oversubscribe --allow-run-as-root -np 2 --bind-to none "$bin/sima-gen" \
  --model "$model" --prompts "$tmp/prompts.h5" --out "$tmp/k.h5" --candidates $C \
  --max-new-tokens $NEW --batch $B --quiet 2>/dev/null &
pid=$!
# wait for two committed chunks (or the end of a run too short to have two)
while [ "$(ls "$tmp/k.h5.parts" 2>/dev/null | grep -c chunk)" -lt 2 ] && kill -0 "$pid" 2>/dev/null; do
  sleep 0.05
done
kill -9 -- -"$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
left=$(( (n + 15) / 16 - $(ls "$tmp/k.h5.parts" 2>/dev/null | grep -c chunk || true) ))
[ -e "$tmp/k.h5" ] && left=0 # the job had finished before the kill
start=$(date +%s.%N)
mpi -np 2 --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
  --out "$tmp/k.h5" --candidates $C --max-new-tokens $NEW --batch $B --quiet 2>/dev/null
end=$(date +%s.%N)
python3 -c "import sys; print('resume after kill -9: rerun took %.2f s to complete the file (%s of %s chunks left to generate)' % (float(sys.argv[2])-float(sys.argv[1]), sys.argv[3], sys.argv[4]))" "$start" "$end" "$left" $(( (n + 15) / 16 ))
h5diff -q "$tmp/r1.h5" "$tmp/k.h5" /responses /responses && echo "resumed output identical to the uninterrupted one"
# start-up cost of a rerun: MPI start, model hash, prompts and parts checked
start=$(date +%s.%N)
mpi -np 2 --bind-to none "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" \
  --out "$tmp/k.h5" --candidates $C --max-new-tokens $NEW --batch $B --quiet 2>/dev/null
end=$(date +%s.%N)
python3 -c "import sys; print('rerun of a finished job (start-up and checks only): %.2f s' % (float(sys.argv[2])-float(sys.argv[1])))" "$start" "$end"
