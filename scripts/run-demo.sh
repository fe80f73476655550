#!/usr/bin/env bash
# The main job on the bundled defaults: install dependencies, build, and run
# one whole SIMA round on 2 MPI ranks with the bundled shapes-world demo model
# (data/shapes): sima-gen -> sima-critic -> sima-pairs -> sima-dpo (LoRA) ->
# sima-bench before and after, ending with the before/after table of object
# hallucination (CHAIR), yes/no accuracy (POPE) and the critic's agreement
# with the oracle. See scripts/demo-round.sh for its options (passed on).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
exec "$root/scripts/demo-round.sh" --out "${SIMA_DEMO_OUT:-$root/out/demo-round}" "$@"
