#!/usr/bin/env bash
# The full-size recipe (configs/full.yaml) end to end: build the training corpus in parallel
# shards, ingest it into one LMDB store, train, and benchmark on held-out test sets.
#
#   benchmarks/full_run.sh WORK TESTS [train flags...]
#
# WORK   folder for the corpus, the line store and the run (WORK/pdf, WORK/lines, WORK/run)
# TESTS  folder holding the held-out test stores test-clean, test-watermark, test-lowres
#        (make demo writes them to demo-output/lines)
# Extra arguments go to `ocr-robust train` (e.g. --workers 12 --time-limit 15). Run it again
# with --resume to continue a stopped run: the corpus is built once.
# Environment: OCR (the command, default ocr-robust), PAGES (default 2000), SHARDS (default:
# one per CPU core; each shard is one `synth` process with its own seed), BENCH=0 to skip the
# benchmark (a session that will be resumed).
set -euo pipefail
OCR=${OCR:-ocr-robust}
WORK=${1:?usage: full_run.sh WORK TESTS [train flags...]}
TESTS=${2:?usage: full_run.sh WORK TESTS [train flags...]}
shift 2
PAGES=${PAGES:-2000}
SHARDS=${SHARDS:-$(nproc)}
CONFIG="$(dirname "$0")/../configs/full.yaml"
stamp() { echo "[$(date +%T)] $*"; }

# the test stores are checked before hours of training, not after
if [ "${BENCH:-1}" != 0 ]; then
  for t in test-clean test-watermark test-lowres; do
    [ -e "$TESTS/$t" ] || { echo "full_run.sh: $TESTS/$t: no such test store (make demo writes them to demo-output/lines)" >&2; exit 2; }
  done
fi

if [ ! -f "$WORK/lines/train.lmdb/ingest.json" ]; then
  stamp "synth: $PAGES pages in $SHARDS shards"
  rm -rf "$WORK/pdf" "$WORK/lines/train.lmdb"
  # shard i: seed i, an equal share of the pages (the first shards take the remainder)
  seq 1 "$SHARDS" | xargs -P "$SHARDS" -I{} sh -c \
    "$OCR synth --out '$WORK/pdf/s{}' --seed {} --quiet --pages \$(( $PAGES / $SHARDS + ({} <= $PAGES % $SHARDS) ))"
  stamp "ingest"
  $OCR ingest "$WORK/pdf" --out "$WORK/lines/train.lmdb" --lmdb --quiet
fi
stamp "train"
$OCR train --config "$CONFIG" --data "$WORK/lines/train.lmdb" --out "$WORK/run" "$@"
[ "${BENCH:-1}" = 0 ] && exit 0
stamp "bench"
$OCR bench --model "$WORK/run" --data "$TESTS/test-clean" "$TESTS/test-watermark" "$TESTS/test-lowres" \
  --json "$WORK/bench.json"
stamp "done"
