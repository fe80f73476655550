#!/usr/bin/env bash
# sima-dpo end to end on the golden tiny model, on 8 pairs built as in
# test_sima_pairs.sh (sima-prep, sima-gen, the verdicts helper, sima-pairs):
#  - the loss goes down over 40 steps with a high learning rate; one line per
#    step on stdout and in metrics.csv; the adapter is written;
#  - -np 2 (micro 1) gives the same adapter as -np 1 (micro 1, accum 2);
#  - --lora-dropout 0 is the plain path bit for bit; 0.1 changes the losses
#    and -np 2 still equals -np 1;
#  - --stop-after 5 (exit 3) then a rerun equals an uninterrupted run, and
#    metrics.csv has each step once; a checkpoint of other settings is refused;
#    SIGTERM checkpoints and exits 3, a rerun resumes at that step;
#  - reference log-probs from the pairs file (--ref-logps) train as computed ones;
#  - --adapter continues from a PEFT adapter;
#  - NaN/inf (a huge learning rate): exit 1 naming the step, the checkpoint
#    of the step before kept;
#  - --merge writes a model folder that sima-gen loads.
set -u
bin=${SIMA_BIN:?}
helper=$bin/../tests/test_pairs_logic
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"

# --- 12 prompts -> 8 pairs (verdict patterns 0,1,3,5 kept)
make_test_pairs

opts=(--model "$model" --pairs "$tmp/pairs.h5" --prompts "$tmp/prompts.h5" --lora-r 8
      --lora-alpha 16 --lr 5e-3 --warmup-ratio 0.1)

# --- the loss goes down: 8 pairs, batch 2, 10 epochs = 40 steps
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 10 --micro-batch 2 --out "$tmp/down" >"$tmp/down.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "training failed: $(cat "$tmp/down.log")"
check '[ "$(sed 1d "$tmp/down/metrics.csv" | wc -l)" = 40 ]' "metrics.csv should have 40 steps"
check '[ "$(grep -c "step [0-9]*/40 epoch .* loss .* rewards/chosen .* rewards/rejected .* accuracy .* margin .* lr .* grad_norm .* tokens/s .* ETA" "$tmp/down.log")" = 40 ]' \
  "one step line per step expected: $(head -5 "$tmp/down.log")"
first=$(col "$tmp/down/metrics.csv" 3 | head -1)
last=$(col "$tmp/down/metrics.csv" 3 | tail -4 | awk '{s += $1} END {print s / NR}')
check 'le "$last" "$(python3 -c "print($first * 0.2)")"' "loss did not go down: first $first, mean of the last 4 $last"
check 'python3 -c "import sys; sys.exit(0 if abs($first - 0.693147) < 1e-4 else 1)"' "first loss $first should be ln 2 (B = 0)"
check '[ -f "$tmp/down/adapter/adapter_model.safetensors" ] && [ -f "$tmp/down/adapter/adapter_config.json" ]' \
  "no adapter written"

# --- -np 2 equals -np 1 with the same global batch
dpo_np2_np1 np2 np1 "" "${opts[@]}" --epochs 3
d=$(st_diff "$tmp/np2/adapter/adapter_model.safetensors" "$tmp/np1/adapter/adapter_model.safetensors")
check 'le "$d" 1e-4' "-np 2 and -np 1 adapters differ by $d of the largest value"

# --- LoRA dropout: 0 is the plain path bit for bit; 0.1 changes the losses
# (from step 2: B = 0 at step 1) and -np 2 still equals -np 1
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 3 --grad-accum 2 --lora-dropout 0 --out "$tmp/d0" --quiet 2>"$tmp/d0.log"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$tmp/d0/adapter/adapter_model.safetensors" "$tmp/np1/adapter/adapter_model.safetensors"' \
  "--lora-dropout 0 should give the adapter of the plain run bit for bit (rc $rc): $(cat "$tmp/d0.log")"
dpo_np2_np1 dnp2 dnp1 "with dropout: " "${opts[@]}" --epochs 3 --lora-dropout 0.1
d=$(st_diff "$tmp/dnp2/adapter/adapter_model.safetensors" "$tmp/dnp1/adapter/adapter_model.safetensors")
check 'le "$d" 1e-4' "with dropout, -np 2 and -np 1 adapters differ by $d of the largest value"
check '[ "$(col "$tmp/dnp1/metrics.csv" 3 | sed -n 2,12p)" != "$(col "$tmp/np1/metrics.csv" 3 | sed -n 2,12p)" ]' \
  "dropout 0.1 did not change the losses"
check 'grep -q "\"lora_dropout\": 0.1" "$tmp/dnp1/adapter/adapter_config.json"' "adapter_config.json should record lora_dropout 0.1"

# --- stop after 5 steps, resume: the same as uninterrupted
dpo_stop res "${opts[@]}" --epochs 3 --grad-accum 2
dpo_resume res np1 "${opts[@]}" --epochs 3 --grad-accum 2
check '[ "$(col "$tmp/res/metrics.csv" 1 | tr "\n" " ")" = "$(seq 1 12 | tr "\n" " ")" ]' \
  "metrics.csv after resume should list steps 1..12 once: $(col "$tmp/res/metrics.csv" 1 | tr '\n' ' ')"
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 3 --grad-accum 2 --out "$tmp/res" --beta 0.2 >"$tmp/res3.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "different run" "$tmp/res3.log"' "a checkpoint of other settings was not refused (rc $rc)"

# --- SIGTERM to the task (as Slurm sends it): checkpoint, exit 3; a rerun resumes there
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 100 --out "$tmp/term" >"$tmp/term.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ "$(wc -l <"$tmp/term/metrics.csv" 2>/dev/null || echo 0)" -ge 4 ] && break
  sleep 0.05
done
# the task itself (mpirun would die of the signal rather than forward it)
task=$(pgrep -f "^$bin/sima-dpo .*--out $tmp/term\$" | head -1)
kill -TERM "${task:-$pid}"
wait "$pid"
rc=$?
check '[ $rc -eq 3 ] && grep -q "interrupted at step" "$tmp/term.log"' "SIGTERM should exit 3, got $rc: $(tail -3 "$tmp/term.log")"
k=$(col "$tmp/term/metrics.csv" 1 | tail -1)
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 100 --out "$tmp/term" --stop-after $((k + 2)) >"$tmp/term2.log" 2>&1
rc=$?
check '[ $rc -eq 3 ] && grep -q "resuming at step $k\$" "$tmp/term2.log"' "the rerun after SIGTERM did not resume at step $k (rc $rc): $(tail -3 "$tmp/term2.log")"

# --- given reference log-probs train like computed ones
mpi 1 "$bin/sima-dpo" "${opts[@]}" --pairs "$tmp/pairs_ref.h5" --epochs 3 --grad-accum 2 \
  --out "$tmp/ref" --quiet 2>"$tmp/ref.log"
rc=$?
check '[ $rc -eq 0 ]' "training on --ref-logps pairs failed: $(cat "$tmp/ref.log")"
d=$(st_diff "$tmp/ref/adapter/adapter_model.safetensors" "$tmp/np1/adapter/adapter_model.safetensors")
check 'le "$d" 1e-3' "given and computed reference log-probs train differently ($d)"

# --- continue from an adapter
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 1 --adapter "$tmp/down/adapter" --out "$tmp/cont" >"$tmp/cont.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--adapter failed: $(cat "$tmp/cont.log")"
l1=$(col "$tmp/cont/metrics.csv" 3 | head -1)
check 'le "$l1" 0.3' "continuing from the trained adapter should start with a low loss, got $l1"

# --- NaN/inf stops with the step named, the last good checkpoint kept
mpi 1 "$bin/sima-dpo" "${opts[@]}" --lr 1e30 --warmup-ratio 0 --save-every 1 --out "$tmp/nan" >"$tmp/nan.log" 2>&1
rc=$?
check '[ $rc -eq 1 ]' "a NaN run should exit 1, got $rc"
check 'grep -q "step 2: loss .* not finite" "$tmp/nan.log"' "the NaN message should name step 2: $(cat "$tmp/nan.log")"
check '[ -f "$tmp/nan/checkpoint/state.bin" ] && [ ! -e "$tmp/nan/adapter" ]' "the step-1 checkpoint should be kept"

# --- --merge: a model folder sima-gen loads
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 1 --adapter "$tmp/down/adapter" --out "$tmp/cont" --merge \
  >"$tmp/merge.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/cont/merged/model.safetensors" ] && [ -f "$tmp/cont/merged/tokenizer.json" ]' \
  "--merge failed: $(cat "$tmp/merge.log")"
mpi 1 "$bin/sima-gen" --model "$tmp/cont/merged" --prompts "$tmp/prompts.h5" --out "$tmp/merged_resp.h5" \
  --max-new-tokens 8 --template llava_hf --quiet 2>"$tmp/gen2.log"
rc=$?
check '[ $rc -eq 0 ]' "sima-gen on the merged model failed: $(cat "$tmp/gen2.log")"

# --- usage errors
"$bin/sima-dpo" --model "$model" >/dev/null 2>&1
rc=$?
check '[ $rc -eq 2 ]' "missing options should exit 2, got $rc"

finish
