#!/usr/bin/env bash
# The recipe of the default model (pretrained/latin): corpus, training, export.
#
#   benchmarks/train_latin.sh [RUN] [TIME_LIMIT_MIN]     # RUN defaults to runs/latin
#
# 1. the training corpus under $DATA (default data/latin): the training split of the real
#    documents (benchmarks/corpus/train.txt, made by benchmarks/real_corpus.py from Debian's
#    documentation PDFs; `make real-docs` installs them) ingested three times with different
#    pages, watermark styles, resolutions and damage, plus synthetic pages set in the system
#    font library; one stores.txt lists the four stores. A store already built is reused.
# 2. training with configs/latin.yaml (a time limit anneals the schedule within it; an
#    interrupted run continues with the same command: --resume is passed when RUN has state).
# 3. the export to pretrained/latin (ONNX, int8 ONNX, safetensors, model.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
RUN=${1:-runs/latin}
LIMIT=${2:-}
DATA=${DATA:-data/latin}
OCR=${OCR:-"$root/.venv/bin/python -m ocr_robust"}
LIST="$here/corpus/train.txt"
[ -f "$LIST" ] || { echo "train_latin.sh: $LIST is missing (python benchmarks/real_corpus.py)" >&2; exit 2; }
mkdir -p "$DATA"
stamp() { echo "[$(date +%T)] $*"; }
build() {  # NAME ARGS...: one store, skipped when it is complete
  local name=$1; shift
  if [ -f "$DATA/$name/ingest.json" ]; then stamp "reuse $DATA/$name"; return; fi
  rm -rf "$DATA/$name"
  stamp "ingest $name"
  $OCR ingest "$@" --out "$DATA/$name" --lmdb --quiet
}
build real-clean @"$LIST" --max-pages 4 --seed 1
build real-marked @"$LIST" --max-pages 4 --seed 2 --dpi 120 --watermarks train --watermark-fraction 0.85 \
  --degrade blur:0.3-0.9,jpeg:45-90
build real-lowres @"$LIST" --max-pages 3 --seed 3 --watermarks train --watermark-fraction 0.5 \
  --degrade downscale:0.45-0.75,jpeg:30-60
if [ ! -f "$DATA/synth/ingest.json" ]; then
  stamp "synth"
  $OCR synth --out "$DATA/synth-pdf" --pages 400 --seed 7 --quiet
fi
build synth "$DATA/synth-pdf" --seed 4 --degrade jpeg:50-95
printf '%s\n' real-clean real-marked real-lowres synth > "$DATA/stores.txt"
stamp "train $RUN"
resume=()
[ -f "$RUN/last.state.pt" ] && resume=(--resume)
$OCR train --data "$DATA" --config "$root/configs/latin.yaml" --out "$RUN" ${LIMIT:+--time-limit "$LIMIT"} "${resume[@]}"
stamp "export"
$OCR export --model "$RUN" --out "$root/pretrained/latin" --format onnx --quantize int8
stamp "done"
