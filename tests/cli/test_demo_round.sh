#!/usr/bin/env bash
# The shapes-world demo round (scripts/demo-round.sh) on the bundled demo
# model, smaller than the main job's: sima-gen, sima-critic, sima-pairs,
# sima-dpo and sima-bench before/after on 2 ranks. Asserts what the demo
# claims:
#  - the demo model hallucinates before the round (CHAIR_i >= 2%), and the
#    object hallucination rate after DPO is 60% of it or less; the captions
#    with a hallucination (CHAIR_s) are 3 points fewer or better;
#  - POPE accuracy does not fall (more than a point);
#  - the critic agrees with the oracle (the pictures' true shapes) on 60% or
#    more of 40 or more pairs the oracle can tell apart (chance: 50%);
#  - the round kept 50 pairs or more and wrote its table.
# The bounds come from runs with seeds 11-14 (data/shapes/README.md lists
# them): CHAIR_i fell to 7-39% of its value, CHAIR_s by 5-13 points, POPE
# rose by 0.8-9 points, the critic agreed on 70-83% of 66-75 pairs, 99-118
# pairs were kept.
# Also: a model folder without weights is refused with its path named.
set -u
bin=${SIMA_BIN:?}
src=${SIMA_SOURCE_DIR:?}
source "$src/tests/cli/lib.sh"

out=$tmp/round
bash "$src/scripts/demo-round.sh" --bin "$bin" --out "$out" --round 400 --bench 150 --seed 11 \
  >"$tmp/round.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "demo round failed: $(tail -20 "$tmp/round.log")"
check '[ -s "$out/table.md" ] && grep -q "CHAIR_i" "$out/table.md"' "no before/after table: $(tail -5 "$tmp/round.log")"

# value KEY: a number of summary.json (dotted path)
value() {
  python3 -c "import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'): d=d[k]
print(d)" "$out/summary.json" "$1" 2>/dev/null
}
# holds 'PYTHON EXPRESSION': true/false over the numbers
holds() { python3 -c "import sys; sys.exit(0 if ($1) else 1)"; }

if [ -f "$out/summary.json" ]; then
  ci_b=$(value before.chair_i) ci_a=$(value after.chair_i)
  cs_b=$(value before.chair_s) cs_a=$(value after.chair_s)
  pope_b=$(value before.pope_accuracy) pope_a=$(value after.pope_accuracy)
  agree=$(value critic.agreement) decided=$(value critic.decided) pairs=$(value pairs)
  echo "CHAIR_i $ci_b -> $ci_a, CHAIR_s $cs_b -> $cs_a, POPE $pope_b -> $pope_a, critic $agree on $decided pairs, $pairs pairs kept"
  check 'holds "$ci_b >= 2"' "the demo model should hallucinate before the round (CHAIR_i $ci_b)"
  check 'holds "$ci_a <= 0.6 * $ci_b"' "CHAIR_i should fall to 60% of its value or less: $ci_b -> $ci_a"
  check 'holds "$cs_a <= $cs_b - 3"' "CHAIR_s should fall by 3 points or more: $cs_b -> $cs_a"
  check 'holds "$pope_a >= $pope_b - 1"' "POPE accuracy should not fall: $pope_b -> $pope_a"
  check 'holds "$decided >= 40 and $agree >= 0.6"' "the critic should beat chance (0.5) against the oracle: $agree on $decided pairs"
  check 'holds "$pairs >= 50"' "too few pairs kept: $pairs"
else
  bad "no summary.json in $out"
fi

# a model folder without weights: refused before anything runs, path named
mkdir -p "$tmp/nomodel"
cp "$src/data/shapes/model/config.json" "$src/data/shapes/model/tokenizer.json" "$tmp/nomodel/"
bash "$src/scripts/demo-round.sh" --bin "$bin" --model "$tmp/nomodel" --out "$tmp/r2" >"$tmp/r2.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "$tmp/nomodel/model.safetensors: missing" "$tmp/r2.log"' \
  "a model without weights should be refused naming the file, got $rc: $(cat "$tmp/r2.log")"
check '[ ! -e "$tmp/r2/responses.h5" ]' "nothing should be written for a refused model"
finish
