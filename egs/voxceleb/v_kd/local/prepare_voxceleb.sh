#!/usr/bin/env bash
# Kaldi data dirs from real VoxCeleb (layout: local/README.md).
# Usage: local/prepare_voxceleb.sh --data_root ROOT --out data [--nj 8]
set -euo pipefail

data_root=
out=data
nj=2
while [ $# -gt 0 ]; do
  case "$1" in
    --data_root|--data-root) data_root="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --nj) nj="$2"; shift 2 ;;
    -h|--help) echo "usage: $0 --data_root ROOT --out DIR [--nj N]"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
if [ -z "${data_root}" ]; then
  echo "$0: --data_root is required (see local/README.md for the expected layout)" >&2
  exit 1
fi

python -m wespeaker_avkd.bin.prepare_voxceleb --data_root "${data_root}" --out "${out}" --nj "${nj}"
python -m wespeaker_avkd.bin.validate_data "${out}/train" "${out}/eval"
