#!/usr/bin/env bash
# The main job on the bundled defaults: install dependencies, build, and
# describe the bundled tiny LLaVA model with sima-model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${SIMA_DEMO_MODEL:-$root/tests/golden/tiny-llava}

"$root/scripts/setup-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
echo "== sima-model info $model"
"$root/build/bin/sima-model" info "$model" | head -n 60
echo "..."
echo "== tokenize"
printf '"USER: <image>\\nWhat is in the image? ASSISTANT:"\n' |
  "$root/build/bin/sima-model" tokenize --tokenizer "$model/tokenizer.json"
