#!/usr/bin/env bash
# The paper's Table 3 on the demo corpus, with intervals: B-ACO-1 alone, and B-ACO-1 with H-MM-4 as its second view
# (joint, frozen, teacher), on FOLDS x SEEDS at the paper's settings (Appendix B), each frozen view and teacher
# the H-MM-4 run of the same fold and seed; then each mode compared with B-ACO-1 alone (emokeras.compare).
#
#   bash scripts/table3.sh                       # folds 0,3,4,7 x seeds 0,1,2 into runs/table3/
#   FOLDS=all SEEDS=0,1,2 bash scripts/table3.sh # all ten folds
#   JOBS=2 bash scripts/table3.sh                # two folds at a time (crossval --jobs), each on its share of the
#                                                # cores or its own GPU
#   ARGS="--hidden_units 64 --learning_rate 1e-3 --noonnx" OUT=runs/table3-64 bash scripts/table3.sh
#                                                # other settings for every system (here the smaller design of
#                                                # docs/results.md), in their own folder
#
# Seeds run one after another (all systems of seed 0 first), so a stopped sweep has whole seeds behind it; run the
# same command again and finished runs are reported, an interrupted one resumes at its last finished epoch.
set -euo pipefail
FOLDS=${FOLDS:-0,3,4,7}
SEEDS=${SEEDS:-0,1,2}
JOBS=${JOBS:-1}
ARGS=${ARGS:-}
DEMO=tfrecords/demo/char-ngram-256  # where `python -m emokeras.prepare` writes the demo corpus
DATA=${DATA:-$DEMO}                 # the demo corpus, prepared below; or another prepared folder
OUT=${OUT:-runs/table3}
EXPORTS=${EXPORTS:-saved_models/$(basename "$OUT")}
TEACHER="$OUT/H-MM-4/seed-{seed}/fold-{fold}"

systems() {  # the crossval arguments of each system, one per line
  echo "--model B-ACO-1"
  echo "--model H-MM-4"
  echo "--multiview joint --view H-MM-4"
  echo "--multiview frozen --teacher $TEACHER"
  echo "--multiview teacher --teacher $TEACHER"
}

# Every run names its data (crossval --jobs needs it); the demo corpus is written first, once.
[ "$DATA" != "$DEMO" ] || python -m emokeras.prepare > /dev/null
ARGS="$ARGS --data $DATA"

for seed in ${SEEDS//,/ }; do
  while read -r system; do
    # shellcheck disable=SC2086  # the system's and ARGS's arguments are words
    python -m emokeras.crossval $system $ARGS --folds "$FOLDS" --seeds "$seed" --output "$OUT" --saved_models "$EXPORTS" \
      --jobs "$JOBS"
  done < <(systems)
done
# Summaries over every seed (nothing is trained again), then the comparisons with the baseline.
while read -r system; do
  # shellcheck disable=SC2086
  python -m emokeras.crossval $system $ARGS --folds "$FOLDS" --seeds "$SEEDS" --output "$OUT" --saved_models "$EXPORTS"
done < <(systems)
python -m emokeras.compare "$OUT/B-ACO-1" "$OUT/B-ACO-1.joint.H-MM-4" "$OUT/B-ACO-1.frozen.H-MM-4" \
  "$OUT/B-ACO-1.teacher.H-MM-4"
python -m emokeras.compare "$OUT/B-ACO-1" "$OUT/B-ACO-1.joint.H-MM-4" "$OUT/B-ACO-1.frozen.H-MM-4" \
  "$OUT/B-ACO-1.teacher.H-MM-4" --format json > "$OUT/compare.json"
