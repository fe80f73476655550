#!/usr/bin/env bash
# Fetches the official evaluation scripts the parity test compares sima-bench
# with, at the commits pinned in official-eval.lock, into DIR (laid out as
# compare_official.py expects), and checks each against the SHA-256 the
# comparison was last run with. Needs network access to GitHub and curl.
#
#   tests/parity/fetch-official-eval.sh DIR
#   SIMA_OFFICIAL_EVAL_DIR=DIR ctest --test-dir build -L parity
#
# A checksum that differs is reported, not fatal: the test then compares with
# the fetched copy (see tests/parity/README.md for where each copy came from).
set -u
dir=${1:?usage: fetch-official-eval.sh DIR}
lock="$(dirname "$0")/official-eval.lock"
command -v curl >/dev/null || { echo "fetch-official-eval.sh: curl is needed" >&2; exit 1; }
rc=0 differ=0
while read -r local repo commit path sum; do
  case "$local" in ''|'#'*) continue ;; esac
  mkdir -p "$dir/$(dirname "$local")"
  url="https://raw.githubusercontent.com/$repo/$commit/$path"
  if ! curl -fsSL "$url" -o "$dir/$local"; then
    echo "FAILED  $local  ($url)" >&2
    rc=1
    continue
  fi
  got=$(sha256sum "$dir/$local" | cut -d' ' -f1)
  if [ "$got" = "$sum" ]; then
    echo "ok      $local"
  else
    echo "DIFFERS $local  ($repo@$commit:$path; sha256 $got, last compared $sum)"
    differ=1
  fi
done <"$lock"
[ $differ -eq 0 ] || echo "some files differ from the copies last compared: the comparison runs on the fetched ones"
echo "Python needs (Debian): python3-sklearn (MME), python3-pandas python3-openpyxl (MMBench),"
echo "python3-tqdm (TextVQA, GQA), python3-nltk python3-pattern (CHAIR)"
exit $rc
