# lib.sh — shared by the command-line tests (sourced, not run).
# Gives: $tmp (a fresh folder, removed at exit), check CONDITION MESSAGE
# (CONDITION is eval'ed; capture `rc=$?` right after a command, before a
# message with $(...) is built, since that resets $?), mpi NP CMD...,
# and finish (prints "N passed, N failed" and sets the exit status).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
mpi() { local np=$1; shift; mpirun --oversubscribe --allow-run-as-root -np "$np" "$@"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
