#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # the options come from run.sh, which sources this file
# Settings of run.sh: every option is checked before any work, then the defaults that depend on other options
# are filled in and handed to the planner. Sourced by run.sh after option parsing, with the arguments parsing
# left over (there must be none); never run. Safety rule (local/common.sh): values are matched against patterns
# and then only compared with [ -ge ] etc. or passed on as single words; nothing here reaches eval or arithmetic
# expansion.
#
# Sets: the word lists SEEDS TRAIN_SEEDS TRIALS MODALITIES COMBOS GRID (and TUNE_NOTE for the log); the defaults of conf_dir, mean_utts and kd_weights;
# real_data, need_faces (stage 1 of real VoxCeleb); feat_source (what the audio systems read: feats|wav|auto);
# mean_part, SYSTEM_PARTS; jobs (side by side: --nj on CPU, 1 with GPUs); NOPROG, VOX_FLAGS, CORPUS_FLAGS, SETS_FLAGS, COMPRESS_FLAGS
# (stages 1-2); PLAN_ARGS (the planner's settings, local/common.sh:plan).

last_stage=9
if [ $# -gt 0 ]; then die "unexpected argument $(printf '%q' "$1") (see --help)"; fi

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
need_uint tune_seed "$tune_seed"
for eval_seed in "${SEEDS[@]}"; do   # a model tuned on dev is no eval sample: the tuning has a seed of its own
  if [ "$eval_seed" = "$tune_seed" ]; then
    die "--seeds holds the tuning seed $tune_seed: choose eval seeds other than --tune_seed"
  fi
done
TRAIN_SEEDS=("${SEEDS[@]}"); TUNE_NOTE=   # stages 3-5 train the tuning seed's baselines and teacher too
if [ "$tune" = true ]; then TRAIN_SEEDS=("$tune_seed" "${SEEDS[@]}"); TUNE_NOTE=" (tuning seed $tune_seed)"; fi
split_words trials "$trials" '^[A-Za-z0-9_.][A-Za-z0-9_.-]*$' TRIALS
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
if [[ $exp =~ (^|[^A-Za-z0-9_])JOB([^A-Za-z0-9_]|$) ]]; then   # cmd.sh's job commands replace that word
  die "--exp may not contain the word JOB (a job command replaces it by the job's index)"
fi

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

# ---------------------------------------------------------------- run settings
mean_part=train             # every system subtracts the mean of its embeddings of this part
if [ "$mean_utts" -gt 0 ]; then mean_part=train_mean; fi
# CPU runs several jobs side by side (each with its share of the cores): small convolutions use two cores
# poorly, two single-core jobs keep both busy. GPU runs go one after another.
if [ -n "$gpus" ]; then jobs=1; else jobs=$nj; fi
PLAN_ARGS=("--exp=$exp" "--data=$data" "--conf_dir=$conf_dir" "--config=$config" --seeds "${SEEDS[@]}"
           --modalities "${MODALITIES[@]}" --kd_combos "${COMBOS[@]}" --tune_grid "${GRID[@]}" --trials "${TRIALS[@]}"
           "--mean_part=$mean_part" "--score_norm=$score_norm" "--top_n=$top_n" "--kd_weights=$kd_weights"
           "--data_type=$data_type" "--aug=$aug" "--gpus=$gpus" "--jobs=$jobs" "--nnodes=$nnodes"
           "--node_rank=$node_rank" "--master_addr=$master_addr" "--master_port=$master_port"
           "--overwrite=$overwrite" "--progress=$progress" "--tune=$tune" "--tune_seed=$tune_seed")
plan check   # every system's config file, conf/kd.yaml, conf/aug.yaml with --aug true, the --config file
system_parts=$(plan parts)   # every part a system embeds (train, the mean part, dev, eval): stage 2's shards
mapfile -t SYSTEM_PARTS <<< "$system_parts"
# what the audio systems read, from their merged config (the trainer's own loader and schema): stage 2 computes
# no fbank for wav, stage 3 checks for the table they read
audio_configs=("$conf_dir/audio.yaml")
if [ "$aug" = true ]; then audio_configs+=(conf/aug.yaml); fi
if [ -n "$config" ]; then audio_configs+=("$config"); fi
# a bad config: feat_source.py's one line ('feat_source: <file>: config key ...') and its exit status 2
feat_source=$(python3 local/feat_source.py "${audio_configs[@]}") || exit $?
# stage 1 of real VoxCeleb: local/prepare_voxceleb.sh's options, each from run.sh's option of the same name
VOX_FLAGS=(--data_root "$data_root" --wespeaker_data "$wespeaker_data" --out "$data" --nj "$nj"
           --dev_speakers "$dev_speakers" --dev_seed "$dev_seed" --dev_max_targets "$dev_max_targets"
           --need_faces "$need_faces" --face_fps "$face_fps" --face_max_frames "$face_max_frames"
           --face_size "$face_size" --progress "$progress")
CORPUS_FLAGS=()     # stage 1: the toy corpus's config (--corpus_config)
if [ -n "$corpus_config" ]; then CORPUS_FLAGS=(--config "$corpus_config"); fi
SETS_FLAGS=(--speech_scp "$data/train/wav.scp")   # stage 1 with --aug true: generated sets, or real ones listed
if [ -n "$musan" ]; then SETS_FLAGS=(--musan "$musan" --rirs "$rirs"); fi
COMPRESS_FLAGS=()   # stage 2: Kaldi matrix compression of the stored fbank (bin.compute_fbank --compress)
if [ "$fbank_compress" = true ]; then COMPRESS_FLAGS=(--compress); fi
NOPROG=()
if [ "$progress" != true ]; then NOPROG=(--no_progress); fi
