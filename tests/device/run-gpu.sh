#!/usr/bin/env bash
# The GPU machine's checks and benchmarks in one call, from the repository
# root there, with .device/sima-gpu.tar.xz packed here by tests/device/pack.sh:
#   1. the GPU tests: every CUDA operation against the CPU backend (f32 and
#      bf16 weights), the golden conformance tests on the CUDA backend;
#   2. the tools on the GPU: sima-gen/critic/pairs/dpo on the tiny model, one
#      rank and two (the files must not depend on the rank count);
#   3. sima's benchmarks, LLaVA-1.5-7B shape (prefill, decode at batch
#      1/32/128, a LoRA-DPO step), then Hugging Face transformers' on the
#      same card (tests/perf/hf_baseline.py).
# Results and logs go to $OUT (the device tool returns them); the last lines
# printed are a summary. SIMA_GPU_SKIP=tests,tools,perf,hf skips stages.
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/sima-gpu-out}
mkdir -p "$out"
skip=",${SIMA_GPU_SKIP:-},"
work=/tmp/sima-gpu
rm -rf "$work" && mkdir -p "$work"
tar -C "$work" -xJf "$root/.device/sima-gpu.tar.xz" || { echo "no pack: run tests/device/pack.sh first"; exit 1; }
bin=$work/bin
# the packed libraries for sima's programs (not for python: transformers runs
# on the machine's own); CUDA's, NCCL's and Open MPI's come from the machine:
# a library still missing is looked for where CUDA and NVIDIA's wheels live
orig_ld=${LD_LIBRARY_PATH:-}
libdirs=$work/lib
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && libdirs=$libdirs:$d
done
export LD_LIBRARY_PATH=$libdirs${orig_ld:+:$orig_ld}
for lib in $(for b in "$bin"/*; do ldd "$b"; done | awk '/not found/{print $1}' | sort -u); do
  hit=$(find /usr /opt /usr/local -name "$lib" 2>/dev/null | head -n 1)
  [ -n "$hit" ] && LD_LIBRARY_PATH=$(dirname "$hit"):$LD_LIBRARY_PATH
done
export SIMA_GOLDEN_DIR=$root/tests/golden SIMA_DATA_DIR=$root/data OMP_NUM_THREADS=8
summary=$out/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
for b in "$bin"/*; do ldd "$b" | grep "not found" | sed "s|^|$(basename "$b"): |"; done | sort -u | tee "$out/missing-libs.txt"

run_test() { # tag, test binary, environment: notes passed / skipped / FAILED
  local tag=$1 name=$2; shift 2
  local log=$out/$name-$tag.log
  env "$@" "$bin/$name" > "$log" 2>&1
  local rc=$? verdict=passed
  [ $rc = 77 ] && verdict=skipped
  [ $rc != 0 ] && [ $rc != 77 ] && verdict="FAILED ($rc)"
  note "test $name ($tag): $verdict: $(tail -n 1 "$log")"
}

if [[ $skip != *,tests,* ]]; then
  for dt in f32 bf16; do run_test $dt test_cuda_ops_gpu SIMA_TEST_DTYPE=$dt; done
  for t in "$bin"/test_*_golden_gpu; do
    run_test f32 "$(basename "$t")" SIMA_TEST_DEVICE=cuda SIMA_TEST_DTYPE=f32
  done
fi

if [[ $skip != *,tools,* ]]; then
  bash "$root/tests/device/tools-gpu.sh" "$bin" "$out/tools" > "$out/tools.log" 2>&1
  note "tools on the GPU: $(tail -n 1 "$out/tools.log")"
fi

cfg=$root/tests/data/llava-1.5-7b-hf/config.json
if [[ $skip != *,perf,* ]]; then
  timeout 240 "$bin/perf_model" --config "$cfg" --device cuda --dtype bf16 --no-vision \
    --prompt 640 --new-tokens 64 --batches 1,32,128 > "$out/perf_model.txt" 2>&1
  note "$(grep -E 'prefill|decode batch|weight stream|matrix|GPU memory' "$out/perf_model.txt")"
  timeout 180 "$bin/perf_dpo_shape" --hidden 4096 --layers 32 --heads 32 --kv-heads 32 \
    --ffn 11008 --vocab 32000 --prompt 64 --image-tokens 576 --response 256 --micro 1 \
    --r 128 --ref-given --steps 3 --sharing on --device cuda --dtype bf16 \
    > "$out/perf_dpo_shape.txt" 2>&1
  note "$(grep -E 'step time|tokens/s|TFLOP|GPU memory' "$out/perf_dpo_shape.txt")"
fi

if [[ $skip != *,hf,* ]]; then
  LD_LIBRARY_PATH=$orig_ld PYTHONUNBUFFERED=1 timeout 300 python3 "$root/tests/perf/hf_baseline.py" --config "$cfg" \
    --json "$out/hf.json" > "$out/hf.txt" 2>&1
  note "$(grep '^hf ' "$out/hf.txt")"
fi
echo "== summary"
cat "$summary"
