#!/usr/bin/env bash
# Memory per rank and wall time of the stages' input and output paths as a
# run grows 10x (default 100,000 then 1,000,000 prompts), on 2 ranks:
#   tests/perf/perf_scale.sh [BUILD_DIR] [N_SMALL] [N_LARGE]
# For each size N: N/5 distinct JPEGs (128x96, about 8 KB each; every image
# named by 5 prompts), N prompts as SIMA JSON Lines, then
#   1. sima-prep import (JSONL -> prompts.h5, every image read and decoded);
#   2. made-up responses (2 per prompt) and verdicts (both orders for half
#      the prompts), then sima-pairs without --ref-logps on the tiny model
#      (the whole tool: selection, token ids of every pair, assembly);
#   3. sima-critic's reading path (perf_scale critic-io: the item pass, then
#      per chunk of 16 its responses rows, questions, ground truths and image
#      bytes) without the model, which would take hours at this size here.
# Each line gives a rank's peak resident memory (getrusage of the process)
# and wall time. With SIMA_BASELINE_BIN=DIR (another build's bin/), the same
# sima-prep and sima-pairs runs of that build are measured too, and critic-io
# --whole stands for the reading of sima-critic before it read a chunk at a
# time. Files go under PERF_SCALE_DIR (default: a temporary folder; about
# 3 GB at 1M prompts), removed at the end; export OPENBLAS_CORETYPE=SkylakeX
# and run under nice on a shared machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
sizes=("${2:-100000}" "${3:-1000000}")
. "$root/tests/perf/lib.sh"
work=${PERF_SCALE_DIR:-$tmp}
mkdir -p "$work"
ps=$build/perf/perf_scale
np=2
run() { # LABEL CMD...: on $np ranks, each line with the rank's peak RSS and wall time
  local label=$1; shift
  mpi -np $np --bind-to none "$ps" rss "$label" -- "$@" | grep -e "peak RSS" -e "critic-io rank"
}
largest=${sizes[0]}
for n in "${sizes[@]}"; do [ "$n" -gt "$largest" ] && largest=$n; done
echo "== $((largest / 5)) JPEGs (reused by the smaller run)"
"$ps" jpegs "$work/images" $((largest / 5))
for n in "${sizes[@]}"; do
  echo "== $n prompts, $((n / 5)) images, $np ranks"
  "$ps" prompts "$work/p$n.jsonl" "$n" $((n / 5))
  echo "-- JSONL input $(du -m "$work/p$n.jsonl" | cut -f1) MB"
  for b in "$bin" ${SIMA_BASELINE_BIN:+"$SIMA_BASELINE_BIN"}; do
    tag=$([ "$b" = "$bin" ] && echo "" || echo " (baseline)")
    rm -f "$work/prompts$n.h5"
    run "sima-prep import$tag" "$b/sima-prep" import "$work/p$n.jsonl" \
      --image-root "$work/images" --out "$work/prompts$n.h5" --quiet
  done
  echo "-- prompts.h5 $(du -m "$work/prompts$n.h5" | cut -f1) MB"
  "$ps" responses "$n" "$work/resp$n.h5" >/dev/null
  "$ps" verdicts "$work/resp$n.h5" "$work/verd$n.h5" >/dev/null
  echo "-- responses.h5 $(du -m "$work/resp$n.h5" | cut -f1) MB, verdicts.h5 $(du -m "$work/verd$n.h5" | cut -f1) MB"
  for b in "$bin" ${SIMA_BASELINE_BIN:+"$SIMA_BASELINE_BIN"}; do
    tag=$([ "$b" = "$bin" ] && echo "" || echo " (baseline)")
    rm -rf "$work/pairs$n.h5" "$work/pairs$n.h5.parts"
    run "sima-pairs$tag" "$b/sima-pairs" --model "$model" --prompts "$work/prompts$n.h5" \
      --responses "$work/resp$n.h5" --verdicts "$work/verd$n.h5" --template llava_hf \
      --out "$work/pairs$n.h5" --quiet
  done
  echo "-- pairs.h5 $(du -m "$work/pairs$n.h5" | cut -f1) MB"
  run "critic reading" "$ps" critic-io "$work/prompts$n.h5" "$work/resp$n.h5" 16
  if [ -n "${SIMA_BASELINE_BIN:-}" ]; then
    run "critic reading, whole file (baseline)" "$ps" critic-io "$work/prompts$n.h5" \
      "$work/resp$n.h5" 16 --whole
  fi
  rm -rf "$work/p$n.jsonl" "$work/prompts$n.h5"* "$work/resp$n.h5" "$work/verd$n.h5" \
    "$work/pairs$n.h5"*
done
rm -rf "$work/images"
