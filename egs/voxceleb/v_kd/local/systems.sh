#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # settings come from run.sh, which sources this file
# Systems of run.sh: naming, training, extraction and scoring helpers. Sourced, never run. Every helper takes
# its inputs as arguments and runs programs as argument arrays. Uses the recipe's validated settings: $exp,
# $data, $conf_dir, $gpus, $num_gpus, $nnodes, $node_rank, $master_addr, $master_port, $overwrite, the
# arrays CONFIG_FLAGS, DEV_FLAGS, PROG_FLAGS, TRIALS, and $mean_part.

# student_name MODALITY COMBO: exp dir name of a KD student ('visual' 'COS+KL' -> visual_kd_cos_kl); the same
# rule as wespeaker_avkd.analysis.report.student_name (tests/recipe/test_recipe_lib.py checks they agree).
student_name() {
  local combo=${2,,}
  printf '%s_kd_%s' "$1" "${combo//+/_}"
}

# sys_dir SEED SYSTEM: exp/seed<SEED>/<SYSTEM>.
sys_dir() { printf '%s/seed%s/%s' "$exp" "$1" "$2"; }

# kd_weight_key LOSS: the Eq. 7 weight of a single KD loss (KL -> alpha, COS -> beta, MMD -> gamma).
kd_weight_key() {
  case "$1" in
    KL) echo alpha ;; COS) echo beta ;; MMD) echo gamma ;;
    *) die "no weight key for KD loss $1" ;;
  esac
}

# train_cmd ARG...: the trainer with ARG (configs, overrides): plain python on CPU or one GPU, torchrun with
# one process per GPU (or node) otherwise.
train_cmd() {
  local -a ow=()
  if [ "$overwrite" = true ]; then ow=(--overwrite); fi
  if [ "$num_gpus" -gt 1 ] || [ "$nnodes" -gt 1 ]; then
    CUDA_VISIBLE_DEVICES="$gpus" torchrun --nnodes="$nnodes" --node_rank="$node_rank" \
      --nproc_per_node="$num_gpus" --master_addr="$master_addr" --master_port="$master_port" \
      -m wespeaker_avkd.bin.train --device cuda "${PROG_FLAGS[@]}" "${ow[@]}" "$@"
  elif [ "$num_gpus" -eq 1 ]; then
    CUDA_VISIBLE_DEVICES="$gpus" python3 -m wespeaker_avkd.bin.train "${DEV_FLAGS[@]}" "${PROG_FLAGS[@]}" \
      "${ow[@]}" "$@"
  else
    python3 -m wespeaker_avkd.bin.train "${DEV_FLAGS[@]}" "${PROG_FLAGS[@]}" "${ow[@]}" "$@"
  fi
}

# ---------------------------------------------------------------- extraction
# A stage collects its extractions in a job file (tab-separated: exp_dir, data_dir, out_dir, mean_vec 0|1,
# embedding_scps "-" or modality=scp[,modality=scp]) and runs them with extract_run: one python process for
# each share of the file (see extract_run).

# extract_add FILE EXP_DIR PART MEAN(0|1) [MODALITY=SCP...]: embed data/PART into EXP_DIR/embeddings/PART.
extract_add() {
  local file=$1 sysd=$2 part=$3 mean=$4; shift 4
  local scps=-
  if [ $# -gt 0 ]; then scps=$(IFS=,; printf '%s' "$*"); fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$sysd" "$data/$part" "$sysd/embeddings/$part" "$mean" "$scps" >> "$file"
}

# extract_run FILE NAME: run every extraction listed in FILE (NAME: the job / log name). On CPU with --nj N the
# lines are dealt to N processes of one thread each (small convolutions keep two cores busier as two processes
# than as one process with two threads); each process gets whole systems and loads each model once.
extract_run() {
  local file=$1 name=$2 n parts=1 i
  local -a ow=()
  if [ "$overwrite" = true ]; then ow=(--force); fi
  n=$(grep -c . "$file" || true)
  if [ "$num_gpus" -eq 0 ] && [ "$jobs" -gt 1 ]; then parts=$jobs; fi
  if [ "$n" -lt "$parts" ]; then parts=$n; fi
  log "  $name: $n extractions in $parts process(es)"
  if [ "$parts" -le 1 ]; then
    python3 -m wespeaker_avkd.bin.extract --jobs "$file" "${DEV_FLAGS[@]}" "${PROG_FLAGS[@]}" "${ow[@]}"
    return
  fi
  pool_begin
  for i in $(seq 0 "$(expr "$parts" - 1)"); do
    # deal whole systems (all lines of one exp dir), not lines: a system's parts differ a lot in size
    awk -F'\t' -v p="$parts" -v i="$i" 'NF { if (!($1 in g)) g[$1] = n++; if (g[$1] % p == i) print }' \
      "$file" > "$file.part$i"
    pool_run "${name}_$i" python3 -m wespeaker_avkd.bin.extract --jobs "$file.part$i" "${DEV_FLAGS[@]}" \
      "${PROG_FLAGS[@]}" "${ow[@]}"
  done
  pool_end
}

# ---------------------------------------------------------------- scoring
# score_add FILE SYSTEM_DIR PART: score SYSTEM_DIR's embeddings of data/PART on data/PART/trials/*, mean of
# its $mean_part embeddings subtracted, into SYSTEM_DIR/scores/PART.
score_add() {
  printf '%s\t%s\t%s\n' "$2/embeddings/$3/xvector.scp" "$2/scores/$3" "$2/embeddings/$mean_part/mean_vec.npy" \
    >> "$1"
}

# score_run FILE PART: score every line of FILE on the trial lists of data/PART (cosine scores, EER/minDCF
# json, a summary line per list) in one python process.
score_run() {
  local file=$1 part=$2 t
  local -a lists=()
  for t in "${TRIALS[@]}"; do need "$data/$part/trials/$t" "1"; lists+=("$data/$part/trials/$t"); done
  python3 -m wespeaker_avkd.bin.score --jobs "$file" --trials "${lists[@]}" --metrics
}

# new_job_file NAME: an empty job file $exp/jobs/NAME.tsv (path printed).
new_job_file() {
  mkdir -p "$exp/jobs"
  : > "$exp/jobs/$1.tsv"
  printf '%s' "$exp/jobs/$1.tsv"
}
