#!/bin/sh
# bench/run.sh: build nnlua, then run bench/run.lua (nnlua against PyTorch on
# the reference models of ../shared/bench/torch_reference.py, one Markdown
# table, also written to build/bench.md).  Arguments go to run.lua, e.g.
#   bench/run.sh --quick            a smoke run of a minute or two
#   bench/run.sh --models vgg16-32 --windows 3
# NNLUA_BENCH_NO_BUILD=1 skips the build (make bench has just built).
set -e
cd "$(dirname "$0")/.."
if [ "${NNLUA_BENCH_NO_BUILD:-0}" != 1 ]; then
  make --no-print-directory all build/bench_peak
fi
exec build/nnlua bench/run.lua "$@"
