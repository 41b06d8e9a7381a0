#!/usr/bin/env bash
# Kaldi data dirs from real VoxCeleb (layouts: local/README.md): OUT/train, OUT/dev (held-out VoxCeleb2 dev
# identities with generated O/E/H lists), OUT/eval (VoxCeleb1 with the official lists), face frames included.
# Usage: local/prepare_voxceleb.sh --data_root ROOT [--wespeaker_data DIR] --out data [--nj 8] [--dev_speakers 100]
#        [--dev_seed 0] [--dev_max_targets 10000] [--need_faces true|false] [--face_fps 1] [--face_max_frames 8]
#        [--face_size 112] [--progress true|false]
# Option values are passed on as single words (never evaluated); numbers are checked here and by the python.
# A bad option is one stderr line and exit status 2.
set -euo pipefail

usage="usage: $0 --data_root ROOT [--wespeaker_data DIR] --out DIR [--nj N] [--dev_speakers N] [--dev_seed N]
  [--dev_max_targets N] [--need_faces true|false] [--face_fps F] [--face_max_frames N] [--face_size PX]
  [--progress true|false]"
data_root=
wespeaker_data=
out=data
nj=2
dev_speakers=100
dev_seed=0
dev_max_targets=10000
need_faces=false
face_fps=1
face_max_frames=8
face_size=112
progress=true
while [ $# -gt 0 ]; do
  case "$1" in
    --data_root|--data-root|--wespeaker_data|--out|--nj|--dev_speakers|--dev_seed|--dev_max_targets|--need_faces|\
    --face_fps|--face_max_frames|--face_size|--progress)
      if [ $# -lt 2 ]; then echo "${0##*/}: $1 needs a value" >&2; exit 2; fi
      case "$1" in
        --data_root|--data-root) data_root="$2" ;;
        --wespeaker_data) wespeaker_data="$2" ;;
        --out) out="$2" ;;
        --nj) nj="$2" ;;
        --dev_speakers) dev_speakers="$2" ;;
        --dev_seed) dev_seed="$2" ;;
        --dev_max_targets) dev_max_targets="$2" ;;
        --need_faces) need_faces="$2" ;;
        --face_fps) face_fps="$2" ;;
        --face_max_frames) face_max_frames="$2" ;;
        --face_size) face_size="$2" ;;
        --progress) progress="$2" ;;
      esac
      shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "${0##*/}: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "${data_root}${wespeaker_data}" ]; then
  echo "${0##*/}: --data_root (or --wespeaker_data) is required (see local/README.md for the expected layout)" >&2
  exit 2
fi
for pair in "nj=${nj}" "dev_speakers=${dev_speakers}" "dev_seed=${dev_seed}" "dev_max_targets=${dev_max_targets}" \
            "face_max_frames=${face_max_frames}" "face_size=${face_size}"; do
  case "${pair#*=}" in
    ''|*[!0-9]*) echo "${0##*/}: --${pair%%=*} must be a non-negative integer, got '${pair#*=}'" >&2; exit 2 ;;
  esac
done
for pair in "need_faces=${need_faces}" "progress=${progress}"; do
  case "${pair#*=}" in
    true|false) ;;
    *) echo "${0##*/}: --${pair%%=*} must be true or false, got '${pair#*=}'" >&2; exit 2 ;;
  esac
done

sources=()
if [ -n "${data_root}" ]; then sources+=(--data_root "${data_root}"); fi
if [ -n "${wespeaker_data}" ]; then sources+=(--wespeaker_data "${wespeaker_data}"); fi
noprog=()
if [ "${progress}" != true ]; then noprog=(--no_progress); fi
python -m wespeaker_avkd.bin.prepare_voxceleb "${sources[@]}" --out "${out}" --nj "${nj}" \
  --dev_speakers "${dev_speakers}" --dev_seed "${dev_seed}" --dev_max_targets "${dev_max_targets}" \
  --need_faces "${need_faces}" --face_fps "${face_fps}" --face_max_frames "${face_max_frames}" \
  --face_size "${face_size}" "${noprog[@]}"
parts=("${out}/train" "${out}/eval")
if [ "${dev_speakers}" -gt 0 ]; then parts+=("${out}/dev"); fi
python -m wespeaker_avkd.bin.validate_data "${parts[@]}"
