#!/usr/bin/env bash
# The recipe of the default model (pretrained/latin): corpus, training, export.
#
#   benchmarks/train_latin.sh [RUN] [MIN1] [MIN2] [MIN3]    # RUN defaults to runs/latin; minutes per stage
#   DATA_ONLY=1 benchmarks/train_latin.sh                    # only the stores of step 1
#
# 1. the training corpus under $DATA (default data/latin): the training split of the real
#    documents (benchmarks/corpus/train.txt, made by benchmarks/real_corpus.py from Debian's
#    documentation PDFs; `make system` installs them) ingested five times with different
#    pages, watermark styles, resolutions and damage, plus synthetic pages set in the system
#    font library, and once more for text-free crops (`backgrounds`: 4 pages of each, 85%
#    painted with the training watermark styles, up to 12 crops a page away from every text
#    line and raster image). stores.txt lists the four stores of stage 1, stores-ft.txt the
#    six of stage 2, stores-notext.txt those and the backgrounds. A store already built is
#    reused.
# 2. stage 1: training from scratch with configs/latin.yaml on stores.txt, into RUN (a time
#    limit anneals the schedule within it).
# 3. stage 2: RUN fine-tuned with configs/latin-ft.yaml on stores-ft.txt (adds small print
#    and scan damage), into RUN-ft. A stage whose run has finished (RUN/done) is skipped; an
#    interrupted one continues with the same command (--resume is passed when it has state).
# 4. stage 3: RUN-ft fine-tuned with configs/latin-notext.yaml on stores-notext.txt (the six
#    stores and `backgrounds`, text-free crops of the training pages read as empty lines, plus
#    5% procedural no-text images per batch), into RUN-notext: a model that reads nothing
#    where a page holds no text. INIT3 starts it from other weights of stage 2 (its export).
# 5. the export of RUN-notext to pretrained/latin (ONNX, int8 ONNX, safetensors, model.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
RUN=${1:-runs/latin}
LIMIT1=${2:-80}
LIMIT2=${3:-85}
LIMIT3=${4:-20}
DATA=${DATA:-data/latin}
. "$here/recipe-common.sh"
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
build real-small @"$LIST" --max-pages 2 --seed 5 --dpi 64 --watermarks train --watermark-fraction 0.3 \
  --degrade jpeg:50-95
build real-scan @"$LIST" --max-pages 2 --seed 6 --watermarks train --watermark-fraction 0.3 \
  --degrade rotate:-0.6-0.6,skew:-0.012-0.012,shade:0.05-0.4,blur:0.4-1.3,noise:2-12,jpeg:50-95
build backgrounds @"$LIST" --max-pages 4 --seed 24 --watermarks train --watermark-fraction 0.85 --backgrounds 12
printf '%s\n' real-clean real-marked real-lowres synth > "$DATA/stores.txt"
printf '%s\n' real-clean real-marked real-lowres synth real-small real-scan > "$DATA/stores-ft.txt"
printf '%s\n' real-clean real-marked real-lowres synth real-small real-scan backgrounds > "$DATA/stores-notext.txt"
if [ -n "${DATA_ONLY:-}" ]; then stamp "the stores are built (DATA_ONLY)"; exit 0; fi
train() {  # RUN LIST CONFIG MINUTES [ARGS...]: one stage, skipped when done
  local run=$1 list=$2 config=$3 minutes=$4; shift 4
  if [ -f "$run/done" ]; then stamp "reuse $run"; return; fi
  local resume=()
  if [ -f "$run/last.state.pt" ]; then resume=(--resume); else resume=(--overwrite); fi  # a run killed before its first checkpoint starts anew
  stamp "train $run ($minutes min)"
  $OCR train --data "$DATA/$list" --config "$root/configs/$config" --out "$run" --time-limit "$minutes" \
    "${resume[@]}" "$@"
  touch "$run/done"
}
train "$RUN" stores.txt latin.yaml "$LIMIT1"
train "$RUN-ft" stores-ft.txt latin-ft.yaml "$LIMIT2" --init "$RUN"
train "$RUN-notext" stores-notext.txt latin-notext.yaml "$LIMIT3" --init "${INIT3:-$RUN-ft}"
stamp "export"
$OCR export --model "$RUN-notext" --out "$root/pretrained/latin" --format onnx --quantize int8
stamp "done"
