#!/usr/bin/env bash
# sima-bench compare on two hand-written results.json files: the Markdown
# table and the JSON hold every benchmark's metrics side by side with
# B - A worked out by hand; a benchmark or metric of one run only shows a
# dash (JSON: null); a missing or invalid results.json is an error naming it.
set -u
bin=${SIMA_BIN:?}
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/A" "$tmp/B" "$tmp/C"
cat >"$tmp/A/results.json" <<'JSON'
{"model": "base", "benchmarks": {
  "pope": {"status": "scored", "all": {"samples": 6, "accuracy": 0.5, "f1": 0.25}},
  "gqa": {"status": "scored", "samples": 2, "accuracy": 50.0},
  "mmvet": {"status": "not scored", "scored": false, "answered": 3}}}
JSON
cat >"$tmp/B/results.json" <<'JSON'
{"model": "tuned", "benchmarks": {
  "pope": {"status": "scored", "all": {"samples": 6, "accuracy": 0.75, "f1": 0.125}},
  "seed": {"status": "scored", "samples": 4, "accuracy": 62.5},
  "mmvet": {"status": "scored", "scored": true, "answered": 3, "score": 31.5}}}
JSON

"$bin/sima-bench" compare "$tmp/A" "$tmp/B" >"$tmp/table.md" 2>"$tmp/c.log"
rc=$?
check '[ $rc -eq 0 ]' "compare failed: $(cat "$tmp/c.log")"
cat >"$tmp/want.md" <<EOF2
| gqa | accuracy | 50 | — | — |
| gqa | samples | 2 | — | — |
| mmvet | answered | 3 | 3 | 0 |
| mmvet | score | — | 31.5 | — |
| mmvet | status | not scored | scored | — |
| pope | all.accuracy | 0.5 | 0.75 | +0.25 |
| pope | all.f1 | 0.25 | 0.125 | -0.125 |
| pope | all.samples | 6 | 6 | 0 |
| seed | accuracy | — | 62.5 | — |
| seed | samples | — | 4 | — |
EOF2
grep '^| [a-z]' "$tmp/table.md" | grep -v '^| benchmark' >"$tmp/rows.md"
check 'cmp -s "$tmp/rows.md" "$tmp/want.md"' "table rows: $(diff "$tmp/want.md" "$tmp/rows.md")"
check 'grep -q "^| benchmark | metric | A | B | B − A |" "$tmp/table.md"' "table header: $(cat "$tmp/table.md")"

"$bin/sima-bench" compare "$tmp/A" "$tmp/B" --json "$tmp/c.json" >/dev/null 2>"$tmp/c2.log"
rc=$?
check '[ $rc -eq 0 ] && [ -s "$tmp/c.json" ]' "compare --json FILE: $(cat "$tmp/c2.log")"
"$bin/sima-bench" compare "$tmp/A" "$tmp/B" --json - >"$tmp/stdout.json" 2>"$tmp/c3.log"
rc=$?
check '[ $rc -eq 0 ] && cmp -s "$tmp/c.json" "$tmp/stdout.json"' "compare --json - differs from the file"
python3 - "$tmp/c.json" <<'PY' >"$tmp/json.log" 2>&1
import json, sys
c = json.load(open(sys.argv[1]))
b = c["benchmarks"]
assert sorted(b) == ["gqa", "mmvet", "pope", "seed"], b
assert b["pope"]["all.accuracy"] == {"a": 0.5, "b": 0.75, "delta": 0.25}, b["pope"]
assert b["pope"]["all.f1"] == {"a": 0.25, "b": 0.125, "delta": -0.125}, b["pope"]
assert b["pope"]["all.samples"] == {"a": 6, "b": 6, "delta": 0}, b["pope"]
assert b["gqa"]["accuracy"] == {"a": 50.0, "b": None, "delta": None}, b["gqa"]
assert b["seed"]["accuracy"] == {"a": None, "b": 62.5, "delta": None}, b["seed"]
assert b["mmvet"]["score"] == {"a": None, "b": 31.5, "delta": None}, b["mmvet"]
assert b["mmvet"]["status"] == {"a": "not scored", "b": "scored", "delta": None}, b["mmvet"]
assert "status" not in b["pope"], b["pope"]
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "compare JSON: $(cat "$tmp/json.log")"

# errors name the file
"$bin/sima-bench" compare "$tmp/A" "$tmp/C" >/dev/null 2>"$tmp/e1.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "$tmp/C/results.json" "$tmp/e1.log"' "missing results.json: $(cat "$tmp/e1.log")"
printf '{"benchmarks": ' >"$tmp/C/results.json"
"$bin/sima-bench" compare "$tmp/A" "$tmp/C" >/dev/null 2>"$tmp/e2.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "$tmp/C/results.json: not valid JSON" "$tmp/e2.log"' "invalid JSON: $(cat "$tmp/e2.log")"
printf '{"model": "x"}\n' >"$tmp/C/results.json"
"$bin/sima-bench" compare "$tmp/A" "$tmp/C" >/dev/null 2>"$tmp/e3.log"
rc=$?
check '[ $rc -eq 1 ] && grep -q "no \"benchmarks\"" "$tmp/e3.log"' "no benchmarks: $(cat "$tmp/e3.log")"
"$bin/sima-bench" compare "$tmp/A" >/dev/null 2>"$tmp/e4.log"
rc=$?
check '[ $rc -eq 2 ]' "compare with one folder should be a usage error"
finish
