#!/usr/bin/env bash
# Kaldi data dirs from real VoxCeleb (layout: local/README.md): OUT/train, OUT/dev (held-out VoxCeleb2 dev
# identities with generated O/E/H lists), OUT/eval (VoxCeleb1 with the official lists).
# Usage: local/prepare_voxceleb.sh --data_root ROOT --out data [--nj 8] [--dev_speakers 100] [--dev_seed 0]
#        [--dev_max_targets 10000]
# Option values are passed on as single words (never evaluated); numbers are checked here.
set -euo pipefail

usage="usage: $0 --data_root ROOT --out DIR [--nj N] [--dev_speakers N] [--dev_seed N] [--dev_max_targets N]"
data_root=
out=data
nj=2
dev_speakers=100
dev_seed=0
dev_max_targets=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --data_root|--data-root|--out|--nj|--dev_speakers|--dev_seed|--dev_max_targets)
      if [ $# -lt 2 ]; then echo "$0: $1 needs a value" >&2; exit 1; fi
      case "$1" in
        --data_root|--data-root) data_root="$2" ;;
        --out) out="$2" ;;
        --nj) nj="$2" ;;
        --dev_speakers) dev_speakers="$2" ;;
        --dev_seed) dev_seed="$2" ;;
        --dev_max_targets) dev_max_targets="$2" ;;
      esac
      shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1 ;;
  esac
done
if [ -z "${data_root}" ]; then
  echo "$0: --data_root is required (see local/README.md for the expected layout)" >&2
  exit 1
fi
for pair in "nj=${nj}" "dev_speakers=${dev_speakers}" "dev_seed=${dev_seed}" "dev_max_targets=${dev_max_targets}"; do
  case "${pair#*=}" in
    ''|*[!0-9]*) echo "$0: --${pair%%=*} must be a non-negative integer, got '${pair#*=}'" >&2; exit 1 ;;
  esac
done

python -m wespeaker_avkd.bin.prepare_voxceleb --data_root "${data_root}" --out "${out}" --nj "${nj}" \
  --dev_speakers "${dev_speakers}" --dev_seed "${dev_seed}" --dev_max_targets "${dev_max_targets}"
parts=("${out}/train" "${out}/eval")
if [ "${dev_speakers}" -gt 0 ]; then parts+=("${out}/dev"); fi
python -m wespeaker_avkd.bin.validate_data "${parts[@]}"
