#!/usr/bin/env bash
# sima-gen --adapter on the golden tiny model and its LoRA adapter
# (tests/golden/tiny-llava-lora):
#  - the adapter changes the greedy answers (its B matrices are not zero);
#  - the adapter is part of the run key: an output made without the adapter
#    is refused as a different run, never resumed or reused;
#  - provenance names the adapter;
#  - a missing adapter folder is an error naming it.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
adapter=$golden/tiny-llava-lora
. "$(dirname "$0")/lib.sh"
[ -d "$adapter" ] || { echo "no adapter at $adapter"; exit 77; }

make_test_prompts 4
opts=(--model "$model" --prompts "$tmp/prompts.h5" --candidates 1 --max-new-tokens 12
      --batch 4 --chunk 2 --template llava_hf --quiet)
text() { h5dump -d /responses/text/data -b LE -o "$2" "$1" >/dev/null 2>&1; }

mpi 1 "$bin/sima-gen" "${opts[@]}" --out "$tmp/base.h5" 2>"$tmp/base.log"
rc=$?
check '[ $rc -eq 0 ]' "base run failed: $(cat "$tmp/base.log")"
mpi 1 "$bin/sima-gen" "${opts[@]}" --adapter "$adapter" --out "$tmp/lora.h5" 2>"$tmp/lora.log"
rc=$?
check '[ $rc -eq 0 ]' "adapter run failed: $(cat "$tmp/lora.log")"
text "$tmp/base.h5" "$tmp/base.bin"
text "$tmp/lora.h5" "$tmp/lora.bin"
check '[ -s "$tmp/base.bin" ] && ! cmp -s "$tmp/base.bin" "$tmp/lora.bin"' \
  "the adapter did not change the answers"
check 'h5dump -a /adapter "$tmp/lora.h5" | grep -q "tiny-llava-lora"' "provenance lacks the adapter"

# same output path, other adapter setting: a different run, refused
mpi 1 "$bin/sima-gen" "${opts[@]}" --adapter "$adapter" --out "$tmp/base.h5" 2>"$tmp/mix.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "different run" "$tmp/mix.log"' \
  "an output of the base model was accepted for the adapter run: $(cat "$tmp/mix.log")"

mpi 1 "$bin/sima-gen" "${opts[@]}" --adapter "$tmp/nope" --out "$tmp/x.h5" 2>"$tmp/missing.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "nope" "$tmp/missing.log"' "missing adapter: $(cat "$tmp/missing.log")"
finish
