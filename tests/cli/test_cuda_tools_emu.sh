#!/usr/bin/env bash
# The tools' GPU code paths end to end, on the CPU emulation of CUDA
# (build/emu-bin: the same tools linked with the emulated CUDA backend),
# with --device cuda: what tests/device/tools-gpu.sh checks on a real GPU
# (sima-gen -np 1 == -np 2, sima-critic, sima-pairs --ref-logps, sima-dpo
# -np 2 == -np 1 --grad-accum 2 bit for bit, --shard == unsharded), that a
# CPU run refuses --shard, and that --device cuda without a GPU is a
# one-line error.
set -u
bin=${SIMA_BIN:?}
src=${SIMA_SOURCE_DIR:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
. "$(dirname "$0")/lib.sh"

emu=$bin/../emu-bin
if [ ! -x "$emu/sima-gen" ]; then
  echo "SKIP: no emulated tools in $emu (built with -DSIMA_CUDA_EMU=OFF)"
  exit 77
fi
mix=$tmp/bin
mkdir -p "$mix"
for t in sima-gen sima-critic sima-pairs sima-dpo; do ln -s "$emu/$t" "$mix/$t"; done
ln -s "$bin/sima-prep" "$mix/sima-prep"
ln -s "$bin/../tests/test_pairs_logic" "$mix/test_pairs_logic"

# a short critic prompt keeps the emulated run to a few minutes
cat > "$tmp/critic.txt" <<'TPL'
Which answer fits the image and the truth better, by objects, relations and attributes?
Question: {question}
Truth: {ground_truth}
[1] {response_1}
[2] {response_2}
End with [[1]] or [[2]].
TPL
# two emulated GPUs: each rank has its own, and the ranks sum with (emulated) NCCL
SIMA_CUEMU_DEVICES=2 SIMA_GOLDEN_DIR=$golden OMP_NUM_THREADS=1 SIMA_TOOLS_DTYPE=bf16 \
  SIMA_TOOLS_CRITIC_TEMPLATE=$tmp/critic.txt \
  bash "$src/tests/device/tools-gpu.sh" "$mix" "$tmp/round" >"$tmp/round.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "tools-gpu.sh on the emulation failed: $(tail -n 20 "$tmp/round.log")"
check 'grep -q "^sima-gen: -np 1 == -np 2" "$tmp/round.log"' "sima-gen np1 vs np2 not checked"
check 'grep -q "^sima-dpo: -np 2 == -np 1 --grad-accum 2" "$tmp/round.log"' "sima-dpo np2 vs np1 not checked"
check 'grep -q "^sima-dpo: --shard == unsharded" "$tmp/round.log"' "sima-dpo --shard not checked"
# one GPU for both ranks: NCCL cannot, the sums go through the host; the
# same adapter bytes
SIMA_CUEMU_DEVICES=1 OMP_NUM_THREADS=1 mpirun --oversubscribe --allow-run-as-root -np 2 \
  "$emu/sima-dpo" --model "$golden/tiny-llava" --pairs "$tmp/round/pairs.h5" \
  --prompts "$tmp/round/prompts.h5" --lora-r 8 --lora-alpha 16 --epochs 2 --lr 1e-3 \
  --save-every 0 --device cuda --dtype bf16 --out "$tmp/dpo-shared" >"$tmp/shared.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "share a GPU" "$tmp/shared.log"' \
  "sima-dpo on ranks sharing a GPU failed or did not say so: $(cat "$tmp/shared.log")"
check 'cmp -s "$tmp/dpo-shared/adapter/adapter_model.safetensors" "$tmp/round/dpo-np2/adapter/adapter_model.safetensors"' \
  "ranks sharing a GPU (sums through the host) and ranks with a GPU each (NCCL) give different adapters"
# --shard without a GPU backend: a one-line usage of what it needs
mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-dpo" --model "$golden/tiny-llava" \
  --pairs "$tmp/round/pairs.h5" --prompts "$tmp/round/prompts.h5" --out "$tmp/dpo-cpu-shard" \
  --lora-r 4 --device cpu --shard >"$tmp/shard.log" 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "needs --device cuda" "$tmp/shard.log"' \
  "--shard on the CPU: expected an error naming --device cuda, got rc $rc: $(cat "$tmp/shard.log")"
# the run key names the device: a CPU run cannot resume the GPU run's file
"$bin/sima-gen" --model "$golden/tiny-llava" --prompts "$tmp/round/prompts.h5" \
  --out "$tmp/round/responses-np1.h5" --max-new-tokens 24 --chunk 2 --device cpu >"$tmp/cpu.log" 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "different run" "$tmp/cpu.log"' \
  "a CPU rerun over the GPU run's output should be refused as a different run: $(cat "$tmp/cpu.log")"

# --device cuda where this build or machine has no GPU: one line, exit 1
SIMA_CUEMU_DEVICES=0 "$emu/sima-gen" --model "$golden/tiny-llava" --prompts "$tmp/round/prompts.h5" \
  --out "$tmp/none.h5" --device cuda >"$tmp/none.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/none.log")" -eq 1 ] && grep -q "device cpu" "$tmp/none.log"' \
  "--device cuda without a GPU: expected one error line naming --device cpu, got rc $rc: $(cat "$tmp/none.log")"
check '[ ! -e "$tmp/none.h5" ]' "--device cuda without a GPU left an output file"

# a GPU too small for the model: one line naming the options that lower
# the memory, exit 1, no output file
SIMA_CUEMU_MAX_ALLOC=200000 "$emu/sima-gen" --model "$golden/tiny-llava" \
  --prompts "$tmp/round/prompts.h5" --out "$tmp/oom.h5" --device cuda >"$tmp/oom.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/oom.log")" -eq 1 ] && grep -q "out of GPU memory" "$tmp/oom.log" && grep -q -- "--batch" "$tmp/oom.log"' \
  "out of GPU memory: expected one error line naming --batch, got rc $rc: $(cat "$tmp/oom.log")"
check '[ ! -e "$tmp/oom.h5" ]' "out of GPU memory left an output file"
finish
