#!/usr/bin/env bash
# sima-pairs end to end on the golden tiny model: prompts from sima-prep,
# responses from sima-gen, and a verdicts file written by the helper mode of
# tests/unit/test_pairs_logic (the tiny model's own critic gives no verdicts):
#  - the summary counts match the verdict pattern; the file records them;
#  - the output of mpirun -np 1 and -np 2 is the same in every /pairs dataset,
#    with and without --ref-logps;
#  - a job killed (SIGKILL) at a random point and rerun equals an
#    uninterrupted run; SIGTERM commits, exits 3, and a rerun finishes; a finished output is left alone by a rerun, another
#    run's output is refused without --overwrite;
#  - inputs of the wrong schema, verdicts or responses not ordered by
#    prompt, responses with corrupt offsets are refused, naming the file;
#  - 20000 made-up prompts: selection in several windows shared by 3 ranks
#    gives the file of 1 rank;
#  - --max-length drops everything it must; ref log-probs are NaN without
#    --ref-logps, finite and below the generation log-probs with it;
#  - export writes llava-dpo and trl JSON lines.
set -u
bin=${SIMA_BIN:?}
helper=$bin/../tests/test_pairs_logic
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"
same_pairs() { h5diff -q "$1" "$2" /pairs /pairs >/dev/null 2>&1; }
# a root attribute's value (integers), or the elements of a dataset, one per line
attr() { h5dump -a "/$2" "$1" | sed -n 's/^ *(0): *//p'; }
values() { h5dump -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' | sed 's/ //g;/^$/d'; }

# --- 30 prompts, one text-only (row 5: pattern 5, kept), images shared
make_test_prompts 30
make_test_verdicts 2 40

opts=(--model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/responses.h5"
      --verdicts "$tmp/verdicts.h5" --template llava_hf --chunk 3)

# --- counts: of 30 prompts, patterns 0,1,3,5 kept (20), 2 no verdict (5),
#     4 inconsistent (5); sampled wins in patterns 0 and 5 (10 each way).
#     A pair whose response holds the image token is dropped too: a random
#     model may generate that token, so $img of them (from the file) are
#     taken off the kept ones, each from one side of the winner counts.
mpi 1 "$bin/sima-pairs" "${opts[@]}" --out "$tmp/p1.h5" >"$tmp/p1.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-pairs -np 1 failed: $(cat "$tmp/p1.log")"
img=$(attr "$tmp/p1.h5" n_image_token)
kept=$((20 - ${img:-0}))
check 'grep -q "30 judged pairs: $kept kept; dropped 5 no verdict, 5 inconsistent, 0 identical, 0 too long .*, $img with the image token" "$tmp/p1.log"' \
  "summary counts wrong: $(cat "$tmp/p1.log")"
sampled=$(sed -n 's/.*chosen: sampled \([0-9]*\) .*/\1/p' "$tmp/p1.log")
greedy=$(sed -n 's/.*, greedy \([0-9]*\) .*/\1/p' "$tmp/p1.log")
check '[ "$((sampled + greedy))" = "$kept" ] && [ "$sampled" -le 10 ] && [ "$greedy" -le 10 ]' \
  "winner counts wrong: $(grep chosen: "$tmp/p1.log")"
check '[ "$(attr "$tmp/p1.h5" n_pairs)" = "$kept" ] && [ "$(attr "$tmp/p1.h5" n_inconsistent)" = 5 ] && [ "$(attr "$tmp/p1.h5" n_no_verdict)" = 5 ]' \
  "counts not recorded in the file"
check '[ "$(attr "$tmp/p1.h5" schema)" = "\"sima.pairs\"" ]' "schema attribute missing"
check '[ "$(values "$tmp/p1.h5" /pairs/ref_chosen_logp | sort -u)" = nan ]' \
  "ref log-probs not NaN without --ref-logps"
check '[ ! -e "$tmp/p1.h5.parts" ]' "parts folder left after a complete run"

# --- the same file for 1 and 2 ranks, with reference log-probs
for np in 1 2; do
  mpi "$np" "$bin/sima-pairs" "${opts[@]}" --ref-logps --batch 2 --out "$tmp/r$np.h5" --quiet 2>"$tmp/r$np.log"
  rc=$?
  check '[ $rc -eq 0 ]' "sima-pairs --ref-logps -np $np failed: $(cat "$tmp/r$np.log")"
done
check 'same_pairs "$tmp/r1.h5" "$tmp/r2.h5"' "-np 1 and -np 2 outputs differ"
mpi 2 "$bin/sima-pairs" "${opts[@]}" --out "$tmp/p2.h5" --quiet 2>/dev/null
check 'same_pairs "$tmp/p1.h5" "$tmp/p2.h5"' "-np 1 and -np 2 outputs differ without --ref-logps"
# every candidate was cut at 40 tokens, so EOS was appended: the reference
# log-prob is the generation's sum plus log p(EOS) < 0
values "$tmp/r1.h5" /pairs/ref_chosen_logp >"$tmp/ref.txt"
values "$tmp/r1.h5" /pairs/prompt >"$tmp/prompt.txt"
values "$tmp/r1.h5" /pairs/chosen >"$tmp/chosen.txt"
values "$tmp/responses.h5" /responses/sum_logprob >"$tmp/gen.txt"
python3 - "$tmp" "$kept" <<'PY' && ok || bad "reference log-probs implausible"
import math, sys
d = sys.argv[1]
rd = lambda n: [float(x) for x in open(d + "/" + n).read().split()]
ref, prompt, chosen, gen = rd("ref.txt"), rd("prompt.txt"), rd("chosen.txt"), rd("gen.txt")
assert len(ref) == int(sys.argv[2])
for r, p, c in zip(ref, prompt, chosen):
    g = gen[int(p) * 2 + int(c)]
    assert math.isfinite(r) and r < g and r > g - 50, (r, g)
PY

# --- kill -9 at a random point, rerun: equal to the uninterrupted run
slow=("${opts[@]}" --ref-logps --chunk 1 --batch 1)
mpi 2 "$bin/sima-pairs" "${slow[@]}" --out "$tmp/full.h5" --quiet 2>/dev/null
check_kill_resume pairs same_pairs 2 7 "${slow[@]}"

# --- SIGTERM to the tasks (as Slurm sends it): commit, exit 3, rerun finishes
check_term_resume pairs same_pairs "${slow[@]}"

# --- a rerun of a finished job does nothing; another run's output is refused
before=$(stat -c %Y "$tmp/p1.h5")
mpi 1 "$bin/sima-pairs" "${opts[@]}" --out "$tmp/p1.h5" 2>"$tmp/again.log"
rc=$?
check '[ $rc -eq 0 ] && [ "$(stat -c %Y "$tmp/p1.h5")" = "$before" ] && grep -q "already complete" "$tmp/again.log"' \
  "rerun of a finished job rewrote it"
mpi 1 "$bin/sima-pairs" "${opts[@]}" --max-length 50 --out "$tmp/p1.h5" 2>"$tmp/other.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "different run" "$tmp/other.log"' "another run's output not refused: $(cat "$tmp/other.log")"

# --- --max-length below every prompt: nothing kept, an empty but valid file
mpi 2 "$bin/sima-pairs" "${opts[@]}" --max-length 50 --overwrite --out "$tmp/p1.h5" >"$tmp/short.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "0 kept.* $kept too long" "$tmp/short.log"' "--max-length filter wrong: $(cat "$tmp/short.log")"
check '[ "$(attr "$tmp/p1.h5" n_pairs)" = 0 ]' "empty output not recorded"

# --- wrong schemas
mpi 1 "$bin/sima-pairs" "${opts[@]}" --verdicts "$tmp/responses.h5" --out "$tmp/x.h5" 2>"$tmp/schema.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "sima.responses file, expected sima.verdicts" "$tmp/schema.log"' \
  "wrong-schema verdicts not refused: $(cat "$tmp/schema.log")"
mpi 1 "$bin/sima-pairs" "${opts[@]}" --responses "$tmp/prompts.h5" --out "$tmp/x.h5" 2>"$tmp/schema2.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "sima.prompts file, expected sima.responses" "$tmp/schema2.log"' \
  "wrong-schema responses not refused: $(cat "$tmp/schema2.log")"
check '[ ! -e "$tmp/x.h5" ]' "output created on failure"
"$bin/sima-pairs" export "$tmp/responses.h5" --format trl >/dev/null 2>"$tmp/schema3.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "expected sima.pairs" "$tmp/schema3.log"' "export of a non-pairs file not refused"
"$bin/sima-pairs" export "$tmp/r1.h5" --format dpo >/dev/null 2>"$tmp/usage.log"
rc=$?
check '[ $rc -eq 2 ]' "bad --format not a usage error"

# --- verdicts not ordered by prompt (the schema's order): refused, naming the file
"$helper" --make-verdicts "$tmp/responses.h5" "$tmp/reversed.h5" --reversed
mpi 1 "$bin/sima-pairs" "${opts[@]}" --verdicts "$tmp/reversed.h5" --out "$tmp/x.h5" 2>"$tmp/order.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "reversed.h5: rows are not ordered by prompt (row 2: prompt 28 after 29)" "$tmp/order.log"' \
  "unordered verdicts not refused: $(cat "$tmp/order.log")"
check '[ ! -e "$tmp/x.h5" ]' "output created on failure"

# --- export
"$bin/sima-pairs" export "$tmp/r1.h5" --format llava-dpo --out "$tmp/llava.jsonl" 2>"$tmp/exp1.log"
rc=$?
check '[ $rc -eq 0 ]' "llava-dpo export failed: $(cat "$tmp/exp1.log")"
"$bin/sima-pairs" export "$tmp/r1.h5" --format trl --image-root /data/coco 2>"$tmp/exp2.log" >"$tmp/trl.jsonl"
rc=$?
check '[ $rc -eq 0 ]' "trl export failed: $(cat "$tmp/exp2.log")"
python3 - "$tmp" "$kept" <<'PY' && ok || bad "exported JSON lines wrong"
import json, sys
d = sys.argv[1]
ll = [json.loads(l) for l in open(d + "/llava.jsonl")]
tr = [json.loads(l) for l in open(d + "/trl.jsonl")]
assert len(ll) == len(tr) == int(sys.argv[2])
prompts = {int(r["id"].split("_")[0][1:]) for r in ll}
assert len(prompts) == len(ll), prompts
assert prompts <= {p for p in range(30) if p % 6 in (0, 1, 3, 5)}, prompts
for r, t in zip(ll, tr):
    p, c, j = r["id"].split("_")
    assert {c, j} == {"0", "1"}
    h = r["conversations"][0]
    assert h["from"] == "human" and r["rejected_conversations"][0] == h
    assert r["conversations"][1]["from"] == "gpt"
    assert r["conversations"][1]["value"] != r["rejected_conversations"][1]["value"]
    assert t["chosen"][0]["content"][0]["text"] == r["conversations"][1]["value"]
    assert t["rejected"][0]["content"][0]["text"] == r["rejected_conversations"][1]["value"]
    if p == "p5":
        assert "image" not in r and t["images"] == [] and not h["value"].startswith("<image>")
        assert t["prompt"][0]["content"] == [{"type": "text", "text": h["value"]}]
    else:
        assert h["value"].startswith("<image>\n") and r["image"].endswith(".jpg")
        assert t["images"] == ["/data/coco/" + r["image"]]
        assert t["prompt"][0]["content"][0] == {"type": "image"}
PY

# --- 20000 prompts (made-up responses, 30000 verdict rows): selection runs
#     in several windows of whole prompts shared by the ranks; 1 and 3 ranks
#     give the same file and the counts of the pattern
make_test_prompts 20000
"$helper" --make-responses 20000 "$tmp/big-resp.h5" && "$helper" --make-verdicts "$tmp/big-resp.h5" "$tmp/big-verd.h5"
check '[ $? -eq 0 ]' "made-up responses and verdicts not written"
big=(--model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/big-resp.h5"
     --verdicts "$tmp/big-verd.h5" --template llava_hf --chunk 700)
for np in 1 3; do
  mpi "$np" "$bin/sima-pairs" "${big[@]}" --out "$tmp/big$np.h5" >"$tmp/big$np.log" 2>&1
  rc=$?
  check '[ $rc -eq 0 ]' "sima-pairs on 20000 prompts, -np $np failed: $(cat "$tmp/big$np.log")"
done
check 'same_pairs "$tmp/big1.h5" "$tmp/big3.h5"' "20000 prompts: -np 1 and -np 3 outputs differ"
# patterns 0,1,3,5 kept: 4 of every 6 prompts (20000 = 6 * 3333 + 2: 13334);
# 2 no verdict, 4 inconsistent: 3333 each
check 'grep -q "20000 judged pairs: 13334 kept; dropped 3333 no verdict, 3333 inconsistent, 0 identical, 0 too long" "$tmp/big3.log"' \
  "20000 prompts: counts wrong: $(grep judged "$tmp/big3.log")"
values "$tmp/big3.h5" /pairs/prompt >"$tmp/bigp.txt"
check '[ "$(wc -l <"$tmp/bigp.txt")" = 13334 ] && sort -n -c "$tmp/bigp.txt"' "20000 prompts: pairs not in prompt order"

# --- corrupt offsets in the middle of the responses' tokens (decreasing,
#     then past the data): an error naming the file and the dataset, no output
cp "$tmp/big-resp.h5" "$tmp/bad-resp.h5"
"$helper" --damage "$tmp/bad-resp.h5" /responses/tokens/offsets 30001 5
mpi 2 "$bin/sima-pairs" "${big[@]}" --responses "$tmp/bad-resp.h5" --out "$tmp/bad.h5" 2>"$tmp/bad.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "bad-resp.h5: /responses/tokens/offsets: offsets decrease at row 30001 (5 after " "$tmp/bad.log"' \
  "decreasing offsets not reported: $(cat "$tmp/bad.log")"
"$helper" --damage "$tmp/bad-resp.h5" /responses/tokens/offsets 30001 999999999
mpi 2 "$bin/sima-pairs" "${big[@]}" --responses "$tmp/bad-resp.h5" --out "$tmp/bad.h5" 2>"$tmp/bad.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "bad-resp.h5: /responses/tokens/offsets: offset 999999999 at row 30001 is past the end of /responses/tokens/data" "$tmp/bad.log"' \
  "offsets past the data not reported: $(cat "$tmp/bad.log")"
check '[ ! -e "$tmp/bad.h5" ]' "output created from a corrupt input"
# responses out of prompt order
cp "$tmp/big-resp.h5" "$tmp/bad-resp.h5"
"$helper" --damage "$tmp/bad-resp.h5" /responses/prompt 30001 0
mpi 2 "$bin/sima-pairs" "${big[@]}" --responses "$tmp/bad-resp.h5" --out "$tmp/bad.h5" 2>"$tmp/bad.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "bad-resp.h5: rows are not ordered by prompt (row 30001: prompt 0 after 15000)" "$tmp/bad.log"' \
  "responses out of order not reported: $(cat "$tmp/bad.log")"

finish
