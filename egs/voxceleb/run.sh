#!/usr/bin/env bash
# Entry point of the VoxCeleb audio-visual KD study: forwards every argument to v_kd/run.sh.
#   bash egs/voxceleb/run.sh                       # all stages on the embedded toy corpus, CPU
#   bash egs/voxceleb/run.sh --seeds "1 2 3" --tune true   # the full protocol
#   bash egs/voxceleb/run.sh --stage 7 --stop_stage 8
set -euo pipefail
# the command line as typed, recorded by the report (v_kd/run.sh passes it on; printf %q, never evaluated)
WESPEAKER_AVKD_RUN_COMMAND=$(printf '%q ' "$0" "$@")
export WESPEAKER_AVKD_RUN_COMMAND
cd "$(dirname "$0")/v_kd"
exec bash run.sh "$@"
