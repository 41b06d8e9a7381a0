#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # settings come from run.sh, which sources this file
# Systems of run.sh: naming, inputs, training, extraction, scoring and tuning-reuse helpers. Sourced, never run.
# Every helper takes its inputs as arguments and runs programs as argument arrays. Uses the recipe's validated
# settings (run.sh options, local/settings.sh): $exp, $data, $gpus, $num_gpus, $nnodes, $node_rank,
# $master_addr, $master_port, $overwrite, $jobs, $feat_source, $score_norm, $top_n, $mean_part, $first_seed,
# $kd_weights, and the arrays DEV_FLAGS, PROG_FLAGS, TRIALS, GRID.

# Names come from the package (wespeaker_avkd/utils/naming.py), read once per run by load_names: the shell
# holds no naming rule of its own.
declare -A _student_names=() _tune_names=() _weight_keys=()

# load_names "MODALITY..." "COMBO..." "WEIGHT...": fill the name tables for these modalities, combos (and the
# single losses) and tuning-grid weights (each argument one space-separated list).
load_names() {
  local kind a b c d
  local -a mods combos weights
  read -r -a mods <<< "$1"; read -r -a combos <<< "$2"; read -r -a weights <<< "$3"
  while IFS=$'\t' read -r kind a b c d; do
    case "$kind" in
      student) _student_names["$a $b"]=$c ;;
      tune) _tune_names["$a $b $c"]=$d ;;
      weight) _weight_keys["$a"]=$b ;;
    esac
  done < <(python3 local/names.py "${mods[@]}" -- "${combos[@]}" -- "${weights[@]}" || die "local/names.py failed")
  [ "${#_weight_keys[@]}" -gt 0 ] || die "local/names.py printed no names (is wespeaker_avkd importable?)"
}

# student_name MODALITY COMBO: exp dir name of a KD student ('visual' 'COS+KL' -> visual_kd_cos_kl).
student_name() {
  local name=${_student_names["$1 $2"]:-}
  [ -n "$name" ] || die "no student name for '$1' '$2' (load_names was given other modalities/combos)"
  printf '%s' "$name"
}

# sys_dir SEED SYSTEM: exp/seed<SEED>/<SYSTEM>.
sys_dir() { printf '%s/seed%s/%s' "$exp" "$1" "$2"; }

# tune_dir MODALITY LOSS WEIGHT: exp/tune/<modality>_kd_<loss>_w<weight>.
tune_dir() {
  local name=${_tune_names["$1 $2 $3"]:-}
  [ -n "$name" ] || die "no tuning run name for '$1' '$2' '$3' (not in the grid given to load_names)"
  printf '%s/tune/%s' "$exp" "$name"
}

# is_mean_part PART: 1 when every system's mean vector is computed from PART, else 0 (extract_add's MEAN).
is_mean_part() { if [ "$1" = "$mean_part" ]; then echo 1; else echo 0; fi; }

# need_audio_input DIR: stop unless DIR holds the table the audio systems read ($feat_source: feats.scp for
# feats, wav.scp for wav, for auto feats.scp when DIR has one, else wav.scp).
need_audio_input() {
  if [ "$feat_source" = feats ] || { [ "$feat_source" = auto ] && [ -f "$1/feats.scp" ]; }; then
    need "$1/feats.scp" "1-2"
  else
    need "$1/wav.scp" 1
  fi
}

# teacher_scps SEED PART: the fusion teacher's inputs for data/PART (the baselines' embeddings of that seed).
teacher_scps() {
  printf 'audio=%s/embeddings/%s/xvector.scp\n' "$(sys_dir "$1" audio_baseline)" "$2"
  printf 'visual=%s/embeddings/%s/xvector.scp\n' "$(sys_dir "$1" visual_baseline)" "$2"
}

# kd_weight_key LOSS: the Eq. 7 weight of a single KD loss (KL -> alpha, COS -> beta, MMD -> gamma).
kd_weight_key() {
  local key=${_weight_keys["$1"]:-}
  [ -n "$key" ] || die "no weight key for KD loss $1"
  printf '%s\n' "$key"
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
  local file=$1 name=$2 n nsys parts=1 i
  local -a ow=()
  if [ "$overwrite" = true ]; then ow=(--force); fi
  n=$(grep -c . "$file" || true)
  if [ "$n" -eq 0 ]; then log "  $name: nothing to extract"; return 0; fi
  if [ "$num_gpus" -eq 0 ] && [ "$jobs" -gt 1 ]; then parts=$jobs; fi
  # no more processes than systems: whole systems are dealt, so an extra process would get an empty share
  nsys=$(awk -F'\t' 'NF && !($1 in s) { s[$1] = 1; k++ } END { print k + 0 }' "$file")
  if [ "$nsys" -lt "$parts" ]; then parts=$nsys; fi
  log "  $name: $n extractions of $nsys system(s) in $parts process(es)"
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
# its $mean_part embeddings subtracted, into SYSTEM_DIR/scores/PART; with --score_norm asnorm also the
# AS-normed scores into SYSTEM_DIR/scores_asnorm/PART. The cohort is the system's own embeddings of
# $mean_part, one mean per speaker of data/$mean_part/utt2spk (bin.score's job line 'embeddings output_dir
# mean_vec cohort cohort_utt2spk').
score_add() {
  local file=$1 sysd=$2 part=$3
  local emb=$sysd/embeddings/$part/xvector.scp mean=$sysd/embeddings/$mean_part/mean_vec.npy
  printf '%s\t%s\t%s\n' "$emb" "$sysd/scores/$part" "$mean" >> "$file"
  if [ "$score_norm" = asnorm ]; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$emb" "$sysd/scores_asnorm/$part" "$mean" \
      "$sysd/embeddings/$mean_part/xvector.scp" "$data/$mean_part/utt2spk" >> "$file"
  fi
}

# score_run FILE PART: score every line of FILE on the trial lists of data/PART (cosine scores, AS-norm with
# the top $top_n cohort scores where a line names a cohort, EER/minDCF json, a summary line per list) in one
# python process.
score_run() {
  local file=$1 part=$2 t
  local -a lists=()
  for t in "${TRIALS[@]}"; do need "$data/$part/trials/$t" "1"; lists+=("$data/$part/trials/$t"); done
  python3 -m wespeaker_avkd.bin.score --jobs "$file" --trials "${lists[@]}" --metrics --top_k "$top_n"
}

# new_job_file NAME: an empty job file $exp/jobs/NAME.tsv (path printed).
new_job_file() {
  mkdir -p "$exp/jobs"
  : > "$exp/jobs/$1.tsv"
  printf '%s' "$exp/jobs/$1.tsv"
}

# ---------------------------------------------------------------- KD-weight tuning
# reuse_tuned MODALITY LOSS: for the first seed, link exp/seed<first>/<student> to the tuning run trained with
# the weight $kd_weights chose for LOSS (the same config and seed: the trainer finds it finished, or refuses
# it if the configs differ). Prints nothing when no tuning run matches.
reuse_tuned() {
  local mod=$1 loss=$2 w tuned target
  target=$(sys_dir "$first_seed" "$(student_name "$mod" "$loss")")
  if [ -L "$target" ]; then rm -f "$target"; fi   # relinked below when the weights still match a tuning run
  if [ "$overwrite" = true ] || [ -e "$target" ]; then return 0; fi   # retrain / a student trained here
  w=$(python3 local/chosen_weight.py "$kd_weights" "$mod" "$loss" "${GRID[@]}")
  if [ -z "$w" ]; then return 0; fi
  tuned=$(tune_dir "$mod" "$loss" "$w")
  if [ ! -f "$tuned/models/avg_model.pt" ]; then return 0; fi
  mkdir -p "$(dirname "$target")"
  ln -sfn "../tune/${tuned##*/}" "$target"
  log "  $target -> $tuned (trained during tuning with the chosen weight $w)"
}
