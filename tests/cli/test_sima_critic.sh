#!/usr/bin/env bash
# sima-critic end to end on the golden tiny model: identical verdicts for
# -np 1 and -np 2, one row per prompt and order with --both-orders, prompts
# too long for the context skipped and counted (never truncated silently),
# resume after kill -9, wrong-schema inputs refused.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"
same() { h5diff -q "$1" "$2" /verdicts /verdicts >/dev/null 2>&1; }
attr() { h5dump -a "/$2" "$1" 2>/dev/null | grep -A1 'DATA {' | tail -1 | sed 's/.*: *//; s/[^0-9-]//g'; }

mkdir -p "$tmp/images"
cp "$golden"/images/*.jpg "$tmp/images/"
python3 - "$tmp" <<'PY'
import json, os, sys
d = sys.argv[1]
imgs = sorted(os.listdir(d + "/images"))
with open(d + "/p.jsonl", "w") as f:
    for i in range(6):
        f.write(json.dumps({"id": "q%d" % i, "image": imgs[i % len(imgs)], "text": "What is shown?",
                            "ground_truth": "Coloured shapes."}) + "\n")
PY
"$bin/sima-prep" import --format sima "$tmp/p.jsonl" --image-root "$tmp/images" --out "$tmp/prompts.h5" --quiet
mpi 1 "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" --out "$tmp/resp.h5" \
  --candidates 2 --max-new-tokens 12 --quiet 2>"$tmp/gen.log"
rc=$?
check '[ $rc -eq 0 ]' "sima-gen failed: $(cat "$tmp/gen.log")"

copts=(--model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/resp.h5" --both-orders
       --max-new-tokens 24 --chunk 2 --quiet)
for np in 1 2; do
  mpi "$np" "$bin/sima-critic" "${copts[@]}" --out "$tmp/v$np.h5" 2>"$tmp/c$np.log"
  rc=$?
  check '[ $rc -eq 0 ]' "sima-critic -np $np failed: $(cat "$tmp/c$np.log")"
done
check 'same "$tmp/v1.h5" "$tmp/v2.h5"' "-np 1 and -np 2 verdicts differ"
rows=$(h5dump -H -d /verdicts/verdict "$tmp/v1.h5" | grep -o 'DATASPACE  SIMPLE { ( [0-9]*' | grep -o '[0-9]*$')
check '[ "$rows" = 12 ]' "expected 12 judgements (6 prompts x 2 orders), got $rows"
check '[ "$(attr "$tmp/v1.h5" n_judged)" = 12 ] && [ "$(attr "$tmp/v1.h5" n_skipped)" = 0 ]' "judged/skipped counts wrong"
h5dump -d /verdicts/order -d /verdicts/first -d /verdicts/second -y -w 0 "$tmp/v1.h5" >"$tmp/ord.txt"
check 'grep -q "0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1" "$tmp/ord.txt"' "orders not alternating default/swapped"
check 'grep -q "1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0" "$tmp/ord.txt"' "first candidates not 1,0,... (sampled shown first)"

# too long for the context: skipped and counted, never silently truncated
# (room for as many new tokens as the model has positions leaves none for a prompt)
context=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["text_config"]["max_position_embeddings"])' "$model/config.json")
mpi 1 "$bin/sima-critic" "${copts[@]}" --max-new-tokens "$context" --out "$tmp/long.h5" 2>"$tmp/long.log"
rc=$?
check '[ $rc -eq 0 ] && [ "$(attr "$tmp/long.h5" n_skipped)" = 12 ]' "too-long prompts not skipped and counted: $(cat "$tmp/long.log")"

# kill -9 and rerun: the same verdicts
setsid mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-critic" "${copts[@]}" --chunk 1 \
  --out "$tmp/k.h5" 2>/dev/null &
pid=$!
sleep "0.$((RANDOM % 9 + 1))"
kill -9 -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# processes of the killed job may outlive mpirun for a moment: let them go
while pgrep -f "^$bin/sima-[a-z]* .*$tmp/" >/dev/null; do sleep 0.1; done
mpi 2 "$bin/sima-critic" "${copts[@]}" --chunk 1 --out "$tmp/k.h5" 2>"$tmp/k.log"
rc=$?
check '[ $rc -eq 0 ]' "rerun after kill failed: $(cat "$tmp/k.log")"
check 'same "$tmp/v1.h5" "$tmp/k.h5"' "verdicts after kill + rerun differ"

# wrong schema
mpi 1 "$bin/sima-critic" --model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/prompts.h5" \
  --out "$tmp/x.h5" 2>"$tmp/s.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "sima.prompts file, expected sima.responses" "$tmp/s.log"' "wrong schema not refused: $(cat "$tmp/s.log")"
check '[ ! -e "$tmp/x.h5" ]' "output created on failure"

finish
