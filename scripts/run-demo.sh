#!/usr/bin/env bash
# The main job on the bundled defaults: install dependencies, build, import
# the bundled demo prompts (data/demo) and generate two candidate answers per
# prompt with sima-gen on 2 MPI ranks, using the bundled tiny LLaVA model.
# (The tiny model has random weights: its answers are noise; the pipeline,
# files and numbers are real.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${SIMA_DEMO_MODEL:-$root/tests/golden/tiny-llava}
out=${SIMA_DEMO_OUT:-$root/out/demo}
bin=$root/build/bin

"$root/scripts/setup-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
mkdir -p "$out"

echo "== sima-prep: data/demo/prompts.jsonl -> $out/prompts.h5"
"$bin/sima-prep" import --format sima "$root/data/demo/prompts.jsonl" \
  --image-root "$root/data/demo/images" --out "$out/prompts.h5"

echo "== sima-gen on 2 ranks -> $out/responses.h5"
mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-gen" --model "$model" \
  --prompts "$out/prompts.h5" --out "$out/responses.h5" --max-new-tokens 48 --overwrite

cat <<MSG

Output: $out/responses.h5 (schema: data/schemas/responses.md)
  as JSON lines:  $bin/sima-prep export $out/responses.h5 | head
  summary:        $bin/sima-prep info $out/responses.h5
  with h5py:      f = h5py.File("$out/responses.h5"); g = f["responses/text"]
                  off = g["offsets"][:]; bytes(g["data"][off[0]:off[1]]).decode()
MSG
"$bin/sima-prep" export "$out/responses.h5" --out "$out/responses.jsonl"
echo "First rows ($out/responses.jsonl):"
head -n 2 "$out/responses.jsonl" | cut -c 1-200
