#!/usr/bin/env bash
# Runs every test of nnlua against the build in $1 (default build/): the C
# unit tests of the runtime, then the busted specs under the nnlua
# interpreter.  Prints each suite's result and ends with one line
# "N passed, N failed"; exits non-zero when anything failed.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
passed=0; failed=0

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -n "$line" ]; then
    p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
  else
    p=0; f=1
  fi
  [ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1   # crashed after reporting
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then printf '%s\n' "$out"; else echo "$line"; fi
done

# busted specs, run by our own interpreter so `require "nn"` needs no setup.
specs=$(ls tests/*_spec.lua 2>/dev/null)
if [ -n "$specs" ]; then
  out=$(NNLUA_BUILD="$BUILD" "$BUILD"/nnlua /usr/bin/busted -o utfTerminal \
        --lpath='tests/?.lua' $specs 2>&1); rc=$?
  printf '%s\n' "$out" | tail -n 200
  sum=$(printf '%s\n' "$out" | grep -E '[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' | tail -n 1)
  if [ -n "$sum" ]; then
    s=$(sed -E 's/.*\b([0-9]+) successes?.*/\1/' <<<"$sum")
    fl=$(sed -E 's/.*\b([0-9]+) failures?.*/\1/' <<<"$sum")
    e=$(sed -E 's/.*\b([0-9]+) errors?.*/\1/' <<<"$sum")
    passed=$((passed + s)); failed=$((failed + fl + e))
  else
    failed=$((failed + 1))
  fi
  [ $rc -ne 0 ] && [ -z "$sum" ] && echo "busted exited with status $rc"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
