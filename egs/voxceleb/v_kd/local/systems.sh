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
# the whole file when bin.extract has --jobs, else one pool job per line.

# extract_add FILE EXP_DIR PART MEAN(0|1) [MODALITY=SCP...]: embed data/PART into EXP_DIR/embeddings/PART.
extract_add() {
  local file=$1 sysd=$2 part=$3 mean=$4; shift 4
  local scps=-
  if [ $# -gt 0 ]; then scps=$(IFS=,; printf '%s' "$*"); fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$sysd" "$data/$part" "$sysd/embeddings/$part" "$mean" "$scps" >> "$file"
}

# has_option MODULE OPTION: the python CLI MODULE lists OPTION in its --help (cached per run).
declare -A _has_option_cache=()
has_option() {
  local key="$1 $2"
  local help
  if [ -z "${_has_option_cache[$key]:-}" ]; then
    help=$(python3 -m "$1" --help 2>/dev/null) || true
    case "$help" in *"$2"*) _has_option_cache[$key]=yes ;; *) _has_option_cache[$key]=no ;; esac
  fi
  [ "${_has_option_cache[$key]}" = yes ]
}

# _extract_one EXP_DIR DATA_DIR OUT_DIR MEAN SCPS: one line of a job file with the per-system CLI.
_extract_one() {
  local -a args=(--exp_dir "$1" --data "$2" --out_dir "$3")
  local -a scps=()
  if [ "$4" = 1 ]; then args+=(--mean_vec); fi
  if [ "$5" != - ]; then IFS=, read -r -a scps <<< "$5"; args+=(--embedding_scps "${scps[@]}"); fi
  if [ "$overwrite" = true ]; then args+=(--force); fi
  python3 -m wespeaker_avkd.bin.extract "${args[@]}" "${DEV_FLAGS[@]}" "${PROG_FLAGS[@]}"
}

# extract_run FILE NAME: run every extraction listed in FILE (NAME: the job / log name).
extract_run() {
  local file=$1 name=$2
  local -a ow=()
  if [ "$overwrite" = true ]; then ow=(--force); fi
  if has_option wespeaker_avkd.bin.extract --jobs; then   # one process, every core
    log "  $name: $(grep -c . "$file") extractions in one process"
    python3 -m wespeaker_avkd.bin.extract --jobs "$file" "${DEV_FLAGS[@]}" "${PROG_FLAGS[@]}" "${ow[@]}"
    return
  fi
  local sysd datad outd mean scps i=0
  pool_begin
  while IFS=$'\t' read -r sysd datad outd mean scps; do
    i=$((i + 1))
    pool_run "${name}_$i" _extract_one "$sysd" "$datad" "$outd" "$mean" "$scps"
  done < "$file"
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
# json, a summary line per list); one python process when bin.score has --jobs.
score_run() {
  local file=$1 part=$2 t emb outd mean
  local -a lists=()
  for t in "${TRIALS[@]}"; do need "$data/$part/trials/$t" "1"; lists+=("$data/$part/trials/$t"); done
  if has_option wespeaker_avkd.bin.score --jobs; then
    python3 -m wespeaker_avkd.bin.score --jobs "$file" --trials "${lists[@]}" --metrics
    return
  fi
  while IFS=$'\t' read -r emb outd mean; do
    python3 -m wespeaker_avkd.bin.score --embeddings "$emb" --trials "${lists[@]}" --output_dir "$outd" \
      --mean_vec "$mean"
    for t in "${TRIALS[@]}"; do
      python3 -m wespeaker_avkd.bin.compute_metrics "$outd/$t.score" --json "$outd/$t.json" > "$outd/${t}_result"
      printf '%s %s: %s\n' "$outd" "$t" "$(cat "$outd/${t}_result")"
    done
  done < "$file"
}

# new_job_file NAME: an empty job file $exp/jobs/NAME.tsv (path printed).
new_job_file() {
  mkdir -p "$exp/jobs"
  : > "$exp/jobs/$1.tsv"
  printf '%s' "$exp/jobs/$1.tsv"
}
