#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # the options come from run.sh, which sources this file
# Settings of run.sh: every option is checked before any work, then the run's settings are derived from them.
# Sourced by run.sh after option parsing, with the arguments parsing left over (there must be none); never run.
# Safety rule (local/common.sh): values are matched against patterns and then only compared with [ -ge ] etc.
# or passed on as single quoted words; nothing here reaches eval or arithmetic expansion.
#
# Sets: last_stage; real_data, need_faces (stage 1 of real VoxCeleb); the word lists SEEDS TRIALS MODALITIES COMBOS
# GRID; the defaults of conf_dir, mean_utts and kd_weights; KD_CONFIGS (the students' kd configs), DATA_FLAGS (the audio
# and visual trainings' data_type override), feat_source (what the audio systems read: feats|wav|auto),
# SCORE_DIRS (score folders of every system: scores, + scores_asnorm with --score_norm asnorm), first_seed,
# mean_part, SYSTEM_PARTS, ncores, num_gpus, jobs, threads, side_by_side, CONFIG_FLAGS, NOPROG, DEV_FLAGS,
# PROG_FLAGS; AUG_FLAGS and the functions mod_aug / need_aug_sets (--aug true).

last_stage=9
if [ $# -gt 0 ]; then echo "$0: unexpected argument $(printf '%q' "$1")" >&2; echo "$help_message" >&2; exit 1; fi

# ---------------------------------------------------------------- validate every option
need_uint stage "$stage" 1
need_uint stop_stage "$stop_stage" 1
if [ "$stage" -gt "$last_stage" ]; then die "--stage $stage selects nothing: the last stage is $last_stage"; fi
if [ "$stop_stage" -gt "$last_stage" ]; then die "--stop_stage $stop_stage: the last stage is $last_stage"; fi
if [ "$stage" -gt "$stop_stage" ]; then die "--stage $stage --stop_stage $stop_stage selects no stage"; fi
need_uint nj "$nj" 1
need_uint nnodes "$nnodes" 1
need_uint node_rank "$node_rank"
need_uint master_port "$master_port" 1
need_uint top_n "$top_n" 1
[[ $master_addr =~ ^[A-Za-z0-9._:-]+$ ]] || die "--master_addr: invalid host $(printf '%q' "$master_addr")"
[[ $gpus =~ ^([0-9]+(,[0-9]+)*)?$ ]] || die "--gpus must be a comma-separated list of GPU ids, got $(printf '%q' "$gpus")"
case "$data_type" in
  raw|shard) ;;
  *) die "--data_type must be raw or shard, got $(printf '%q' "$data_type")" ;;
esac
if [ "$aug" = true ] && [ "$data_type" = shard ]; then
  die "--aug true needs --data_type raw: WeSpeaker's augmentation pipeline reads raw files, not yet tar shards"
fi
case "$score_norm" in
  none|asnorm) ;;
  *) die "--score_norm must be none or asnorm, got $(printf '%q' "$score_norm")" ;;
esac
split_words seeds "$seeds" '^(0|[1-9][0-9]{0,8})$' SEEDS
split_words trials "$trials" '^[A-Za-z0-9_.-]+$' TRIALS
split_words modalities "$modalities" '^(audio|visual)$' MODALITIES
split_words kd_combos "$kd_combos" '^(COS|KL|MMD)(\+(COS|KL|MMD))*$' COMBOS
split_words tune_grid "$tune_grid" '^(0|[1-9][0-9]*)(\.[0-9]+)?$|^0?\.[0-9]+$' GRID
need_uint dev_speakers "$dev_speakers" 1   # the recipe scores and tunes on data/dev (the script alone allows 0)
need_uint dev_seed "$dev_seed"
need_uint dev_max_targets "$dev_max_targets" 1
need_uint face_max_frames "$face_max_frames" 1
need_uint face_size "$face_size" 8
[[ $face_fps =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ && ! $face_fps =~ ^[0.]+$ ]] ||
  die "--face_fps must be a positive number, got $(printf '%q' "$face_fps")"
for name in data_root wespeaker_data corpus_config conf_dir config data fbank shard_dir exp kd_weights musan rirs; do
  need_path "$name" "${!name}"
done
if [ -n "$musan$rirs" ]; then
  if [ "$aug" != true ]; then die "--musan/--rirs are the augmentation's sets: add --aug true"; fi
  if [ -z "$musan" ] || [ -z "$rirs" ]; then die "--musan and --rirs go together (or neither: generated sets)"; fi
  for name in musan rirs; do [ -d "${!name}" ] || die "--$name ${!name}: no such directory"; done
fi
case "$exp" in *,*) die "--exp may not contain a comma (embedding lists are comma-separated)" ;; esac

# ---------------------------------------------------------------- defaults that depend on other options
real_data=false     # real VoxCeleb (--data_root and/or --wespeaker_data) instead of the toy corpus
if [ -n "$data_root$wespeaker_data" ]; then real_data=true; fi
if [ -z "$conf_dir" ]; then
  if [ "$real_data" = true ]; then conf_dir=conf/paper; else conf_dir=conf/toy; fi
fi
if [ -z "$mean_utts" ]; then
  if [ "$real_data" = true ]; then mean_utts=0; else mean_utts=300; fi
fi
# stage 1 refuses, before any conversion, a real corpus without faces when the run goes on to train the visual
# baseline (stage 3) and so the teacher and the students: a run that stops before stage 3 may be audio only
need_faces=false
if [ "$stop_stage" -ge 3 ]; then need_faces=true; fi
need_uint mean_utts "$mean_utts"
if [ -z "$kd_weights" ]; then
  if [ "$tune" = true ]; then kd_weights=$exp/tune/kd_weights.yaml; else kd_weights=conf/kd_weights.yaml; fi
fi
for f in audio.yaml visual.yaml teacher.yaml; do
  [ -f "$conf_dir/$f" ] || die "$conf_dir/$f is missing (--conf_dir)"
done
[ -f conf/kd.yaml ] || die "conf/kd.yaml is missing (the students' kd block)"
if [ -n "$config" ] && [ ! -f "$config" ]; then die "--config $config: no such file"; fi

# ---------------------------------------------------------------- run settings
CONFIG_FLAGS=()
if [ -n "$config" ]; then CONFIG_FLAGS=(--config "$config"); fi
# a student is its baseline's config + conf/kd.yaml (shared by every conf set) + the set's own kd.yaml, if it
# has one, merged over it
KD_CONFIGS=(--config conf/kd.yaml)
if [ -f "$conf_dir/kd.yaml" ]; then KD_CONFIGS+=(--config "$conf_dir/kd.yaml"); fi
# what the audio systems read, from their merged config (the trainer's own loader and schema): stage 2 computes
# no fbank for wav, stage 3 checks for the table they read
# --aug true: conf/aug.yaml (WeSpeaker's augmentation) over every audio system's config, its sets from stage 1
AUG_FLAGS=()
if [ "$aug" = true ]; then
  [ -f conf/aug.yaml ] || die "conf/aug.yaml is missing (--aug true)"
  AUG_FLAGS=(--config conf/aug.yaml --noise_data "$data/musan/wav.scp" --reverb_data "$data/rirs/wav.scp")
fi
# mod_aug MOD: MOD_AUG = the augmentation flags of a system of modality MOD (audio only)
mod_aug() { MOD_AUG=(); if [ "$1" = audio ]; then MOD_AUG=("${AUG_FLAGS[@]}"); fi; }
# need_aug_sets: with --aug true, stage 1's noise and RIR sets must exist
need_aug_sets() {
  if [ "$aug" = true ]; then need "$data/musan/wav.scp" 1; need "$data/rirs/wav.scp" 1; fi
}
audio_configs=("$conf_dir/audio.yaml")
if [ "$aug" = true ]; then audio_configs+=(conf/aug.yaml); fi
if [ -n "$config" ]; then audio_configs+=("$config"); fi
# a bad config: feat_source.py's one line ('feat_source: <file>: config key ...') and its exit status 2
feat_source=$(python3 local/feat_source.py "${audio_configs[@]}") || exit $?
load_names "${MODALITIES[*]}" "${COMBOS[*]}" "${GRID[*]}"   # exp dir names, from wespeaker_avkd/utils/naming.py
DATA_FLAGS=()       # the audio and visual trainings (and so their extractions) read tar shards with --data_type shard
if [ "$data_type" = shard ]; then DATA_FLAGS=(+dataset_args.data_type=shard); fi
COMPRESS_FLAGS=()   # stage 2: Kaldi matrix compression of the stored fbank (bin.compute_fbank --compress)
if [ "$fbank_compress" = true ]; then COMPRESS_FLAGS=(--compress); fi
SCORE_DIRS=(scores)
if [ "$score_norm" = asnorm ]; then SCORE_DIRS+=(scores_asnorm); fi
first_seed=${SEEDS[0]}
mean_part=train             # every system subtracts the mean of its embeddings of this part
if [ "$mean_utts" -gt 0 ]; then mean_part=train_mean; fi
# baselines and the teacher embed the whole training set (the teacher trains on it, kd_export reads it), the
# mean part, dev (tuning's reference) and eval
SYSTEM_PARTS=(train dev eval)
if [ "$mean_part" != train ]; then SYSTEM_PARTS=(train "$mean_part" dev eval); fi
ncores=$(python3 -c "import os; print(len(os.sched_getaffinity(0)))")
num_gpus=0
if [ -n "$gpus" ]; then IFS=, read -r -a gpu_list <<< "$gpus"; num_gpus=${#gpu_list[@]}; fi
# CPU runs several trainings side by side (each with its share of the cores): small convolutions use two
# cores poorly, two single-core jobs keep both busy. GPU runs go one after another.
if [ "$num_gpus" -gt 0 ]; then jobs=1; else jobs=$nj; fi
threads=$ncores             # torch threads of one job; pool_begin lowers it while jobs run side by side
side_by_side=false
refresh_flags
NOPROG=()
if [ "$progress" != true ]; then NOPROG=(--no_progress); fi
