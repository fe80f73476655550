#!/usr/bin/env bash
# sima-dpo --mode sft on the golden tiny model and the bundled demo prompts
# (data/demo through sima-prep): the cross-entropy on the ground-truth answers
# goes down with a high learning rate (to 3/4 of the first step's or less);
# one step line per step and metrics.csv; the adapter is written; --pairs is
# refused in SFT mode.
set -u
bin=${SIMA_BIN:?}
src=${SIMA_SOURCE_DIR:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
source "$src/tests/cli/lib.sh"

demo=$src/data/demo
"$bin/sima-prep" import "$demo/prompts.jsonl" --image-root "$demo/images" --out "$tmp/demo.h5" \
  >"$tmp/prep.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-prep import of the demo failed: $(cat "$tmp/prep.log")"

opts=(--mode sft --model "$model" --prompts "$tmp/demo.h5" --template llava_hf --lora-r 8
      --lora-alpha 16 --lr 5e-3 --warmup-ratio 0.1)

# --- 8 answers, batch 2, 5 epochs = 20 steps
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 5 --micro-batch 2 --out "$tmp/sft" >"$tmp/sft.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "SFT training failed: $(cat "$tmp/sft.log")"
check '[ "$(sed 1d "$tmp/sft/metrics.csv" | wc -l)" = 20 ]' "metrics.csv should have 20 steps"
check '[ "$(grep -c "step [0-9]*/20 epoch .* loss .* lr .* grad_norm .* tokens/s .* ETA" "$tmp/sft.log")" = 20 ]' \
  "one step line per step expected: $(head -5 "$tmp/sft.log")"
check 'grep -q "8 SFT answers" "$tmp/sft.log"' "the 8 demo answers should be the items: $(head -3 "$tmp/sft.log")"
first=$(col "$tmp/sft/metrics.csv" 3 | head -1)
last=$(col "$tmp/sft/metrics.csv" 3 | tail -4 | awk '{s += $1} END {print s / NR}')
# at most 3/4 of the first step's loss: a clear fall on any random tiny model
check 'le "$last" "$(python3 -c "print($first * 0.75)")"' "SFT loss did not go down: first $first, mean of the last 4 $last"
check '[ -f "$tmp/sft/adapter/adapter_model.safetensors" ]' "no adapter written"

# --- -np 2 equals -np 1 with the same global batch (token-weighted micro-batches)
mpi 2 "$bin/sima-dpo" "${opts[@]}" --epochs 1 --out "$tmp/np2" --quiet 2>"$tmp/np2.log"
rc=$?
check '[ $rc -eq 0 ]' "SFT -np 2 failed: $(cat "$tmp/np2.log")"
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 1 --grad-accum 2 --out "$tmp/np1" --quiet 2>"$tmp/np1.log"
rc=$?
check '[ $rc -eq 0 ]' "SFT -np 1 --grad-accum 2 failed: $(cat "$tmp/np1.log")"
l2=$(col "$tmp/np2/metrics.csv" 3 | tr '\n' ' ')
l1=$(col "$tmp/np1/metrics.csv" 3 | tr '\n' ' ')
check 'python3 -c "import sys; a=\"$l2\".split(); b=\"$l1\".split(); sys.exit(0 if len(a)==len(b)==4 and all(abs(float(x)-float(y))<=1e-4*abs(float(y)) for x,y in zip(a,b)) else 1)"' \
  "SFT losses differ between -np 2 ($l2) and -np 1 ($l1)"

# --- usage
"$bin/sima-dpo" --mode sft --model "$model" --prompts "$tmp/demo.h5" --pairs x.h5 --out "$tmp/u" >/dev/null 2>&1
rc=$?
check '[ $rc -eq 2 ]' "--pairs in SFT mode should exit 2, got $rc"
"$bin/sima-dpo" --mode foo --model "$model" >/dev/null 2>&1
rc=$?
check '[ $rc -eq 2 ]' "--mode foo should exit 2, got $rc"
finish
