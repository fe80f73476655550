#!/usr/bin/env bash
# sima-gen end to end on the golden tiny model, with prompts made here:
#  - the output of mpirun -np 1, 2 and 3 is the same in every dataset;
#  - greedy candidates equal the engine's single-sequence greedy output
#    (a run with one greedy candidate per prompt and batch 1);
#  - a job killed (SIGKILL) at a random point and rerun equals an
#    uninterrupted run; SIGTERM commits, exits 3, and a rerun finishes;
#  - a finished output is left alone by a rerun; an output of another run is
#    refused without --overwrite; a prompts file of the wrong schema is refused.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"
same_responses() { h5diff -q "$1" "$2" /responses /responses >/dev/null 2>&1; }

# --- a dozen prompts, most with images, two sharing one, one text-only
make_test_prompts 12 "Where is the square?"

gen_opts=(--model "$model" --prompts "$tmp/prompts.h5" --candidates 3 --max-new-tokens 24
          --batch 4 --chunk 2 --seed 7 --template llava_hf --quiet)

# --- the same file for 1, 2 and 3 ranks
for np in 1 2 3; do
  mpi "$np" "$bin/sima-gen" "${gen_opts[@]}" --out "$tmp/r$np.h5" 2>"$tmp/gen$np.log"
rc=$?
  check '[ $rc -eq 0 ]' "sima-gen -np $np failed: $(cat "$tmp/gen$np.log")"
done
check 'same_responses "$tmp/r1.h5" "$tmp/r2.h5"' "-np 1 and -np 2 outputs differ"
check 'same_responses "$tmp/r1.h5" "$tmp/r3.h5"' "-np 1 and -np 3 outputs differ"
check '[ ! -e "$tmp/r2.h5.parts" ]' "parts folder left after a complete run"

# --- every row present once, in prompt order; greedy candidate 0, sampled others
"$bin/sima-prep" export "$tmp/r1.h5" >"$tmp/r1.jsonl" 2>"$tmp/exp.log"
rc=$?
check '[ $rc -eq 0 ]' "export of responses failed: $(cat "$tmp/exp.log")"
python3 - "$tmp/r1.jsonl" <<'PY' && ok || bad "responses rows wrong"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["prompt"], r["candidate"]) for r in rows] == [(p, c) for p in range(12) for c in range(3)], rows[:4]
assert all((r["kind"] == "greedy") == (r["candidate"] == 0) for r in rows)
assert all(len(r["tokens"]) > 0 and r["finish"] in ("eos", "length") for r in rows)
assert len({r["seed"] for r in rows}) == len(rows)
PY

# --- greedy candidates equal single-sequence greedy generation
mpi 1 "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" --candidates 1 \
  --max-new-tokens 24 --batch 1 --chunk 1 --template llava_hf --quiet --out "$tmp/alone.h5" 2>"$tmp/alone.log"
rc=$?
check '[ $rc -eq 0 ]' "single-sequence run failed: $(cat "$tmp/alone.log")"
"$bin/sima-prep" export "$tmp/alone.h5" >"$tmp/alone.jsonl"
python3 - "$tmp/r1.jsonl" "$tmp/alone.jsonl" <<'PY' && ok || bad "greedy candidates differ from single-sequence greedy"
import json, sys
a = {r["prompt"]: r["tokens"] for r in map(json.loads, open(sys.argv[1])) if r["candidate"] == 0}
b = {r["prompt"]: r["tokens"] for r in map(json.loads, open(sys.argv[2]))}
assert a == b
PY

# --- kill -9 at a random point, rerun: equal to the uninterrupted run
slow_opts=("${gen_opts[@]}" --max-new-tokens 200 --chunk 1)
mpi 2 "$bin/sima-gen" "${slow_opts[@]}" --out "$tmp/full.h5" 2>/dev/null
rc=$?
check '[ $rc -eq 0 ]' "uninterrupted reference run failed"
check_kill_resume gen same_responses 1 9 "${slow_opts[@]}"

# --- SIGTERM to the tasks (as Slurm sends it): commit, exit 3, rerun finishes
check_term_resume gen same_responses "${slow_opts[@]}"

# --- a second job on the same output while the first runs is refused
mpirun --oversubscribe --allow-run-as-root -np 1 "$bin/sima-gen" "${slow_opts[@]}" --out "$tmp/busy.h5" 2>/dev/null &
pid=$!
while [ ! -e "$tmp/busy.h5.parts/run_key" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
mpi 1 "$bin/sima-gen" "${slow_opts[@]}" --out "$tmp/busy.h5" 2>"$tmp/busy.log"
rc=$?
kill -0 "$pid" 2>/dev/null && running=1 || running=0
check '[ $running -eq 0 ] || { [ $rc -eq 1 ] && grep -q "another job is writing" "$tmp/busy.log"; }' "concurrent job not refused: $(cat "$tmp/busy.log")"
wait "$pid"
rc=$?
check '[ $rc -eq 0 ] && same_responses "$tmp/full.h5" "$tmp/busy.h5"' "the first job did not finish cleanly beside a refused second one"

# --- a rerun of a finished job does nothing; another run's output is refused
before=$(stat -c %Y "$tmp/r1.h5")
mpi 1 "$bin/sima-gen" "${gen_opts[@]}" --out "$tmp/r1.h5" 2>"$tmp/again.log"
rc=$?
check '[ $rc -eq 0 ] && [ "$(stat -c %Y "$tmp/r1.h5")" = "$before" ]' "rerun of a finished job rewrote it"
mpi 1 "$bin/sima-gen" "${gen_opts[@]}" --seed 8 --out "$tmp/r1.h5" 2>"$tmp/other.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "different run" "$tmp/other.log"' "another run's output not refused: $(cat "$tmp/other.log")"
mpi 1 "$bin/sima-gen" "${gen_opts[@]}" --seed 8 --overwrite --out "$tmp/r1.h5" 2>/dev/null
rc=$?
check '[ $rc -eq 0 ] && ! same_responses "$tmp/r1.h5" "$tmp/r2.h5"' "--overwrite did not regenerate"

# --- wrong schema and missing model
mpi 1 "$bin/sima-gen" --model "$model" --prompts "$tmp/r2.h5" --out "$tmp/x.h5" 2>"$tmp/schema.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "sima.responses file, expected sima.prompts" "$tmp/schema.log"' \
  "wrong-schema prompts not refused: $(cat "$tmp/schema.log")"
mkdir -p "$tmp/empty_model"
mpi 1 "$bin/sima-gen" --model "$tmp/empty_model" --prompts "$tmp/prompts.h5" --out "$tmp/y.h5" 2>"$tmp/model.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "empty_model" "$tmp/model.log"' "incomplete model folder not refused: $(cat "$tmp/model.log")"
check '[ ! -e "$tmp/x.h5" ] && [ ! -e "$tmp/y.h5" ]' "output created on failure"

finish
