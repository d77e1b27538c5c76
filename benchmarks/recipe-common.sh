# Sourced by the model recipes (train_latin.sh, train_latin_robust.sh) after they set DATA:
# the command, the training-document list, and `build`, which ingests one store unless it
# is already complete.
OCR=${OCR:-"$root/.venv/bin/python -m ocr_robust"}
LIST="$here/corpus/train.txt"
[ -f "$LIST" ] || { echo "$(basename "$0"): $LIST is missing (python benchmarks/real_corpus.py)" >&2; exit 2; }
mkdir -p "$DATA"
stamp() { echo "[$(date +%T)] $*"; }
build() {  # NAME ARGS...: one store, skipped when it is complete
  local name=$1; shift
  if [ -f "$DATA/$name/ingest.json" ]; then stamp "reuse $DATA/$name"; return; fi
  rm -rf "$DATA/$name"
  stamp "ingest $name"
  $OCR ingest "$@" --out "$DATA/$name" --lmdb --quiet
}
