#!/usr/bin/env bash
# CTest test parity/official_scripts: generates the fixtures and compares
# sima-bench score with the official evaluation scripts found in
# SIMA_OFFICIAL_EVAL_DIR (fetch-official-eval.sh writes that folder).
# Without it the test is skipped (exit 77) and says why.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${SIMA_BIN:?SIMA_BIN: the folder holding sima-bench}
dir=${SIMA_OFFICIAL_EVAL_DIR:-}
if [ -z "$dir" ]; then
  echo "skipped: SIMA_OFFICIAL_EVAL_DIR is not set; run tests/parity/fetch-official-eval.sh DIR" \
       "(needs GitHub) and set SIMA_OFFICIAL_EVAL_DIR=DIR to compare with the official scripts"
  exit 77
fi
if [ ! -d "$dir" ]; then
  echo "SIMA_OFFICIAL_EVAL_DIR=$dir: no such folder" >&2
  exit 1
fi
# Debian's interpreter: the scripts' modules (sklearn, pandas, nltk, pattern)
# come from Debian packages
py=${SIMA_PARITY_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=$(command -v python3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$here/gen_fixtures.py" "$tmp/fixtures" || exit 1
"$py" "$here/compare_official.py" "$dir" "$tmp/fixtures" "$bin/sima-bench" "$tmp/work"
