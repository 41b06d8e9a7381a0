#!/usr/bin/env bash
# Audio-visual -> single-modality knowledge distillation for person verification (Zhang, Chen, Qian,
# Interspeech 2021), WeSpeaker-style. See README.md in this directory for what each stage reads and writes.
#
#   bash run.sh                                    # every stage, embedded toy corpus, CPU, seed 1
#   bash run.sh --seeds "1 2 3" --tune true --kd_combos "COS KL MMD COS+KL COS+MMD KL+MMD"   # the full protocol
#   bash run.sh --data_root /data/voxceleb --gpus 0,1,2,3   # real VoxCeleb with the paper's configs
#
# The stages call programs; which systems a stage trains, embeds and scores comes from the planner
# (wespeaker_avkd/bin/plan.py) as job files, run through the job commands of cmd.sh (local: tools/run.py).
# Shell safety: no option value reaches eval, arithmetic expansion or an unquoted expansion (local/common.sh).
set -euo pipefail
# the command line as typed, for the report (shell-quoted, never evaluated); egs/voxceleb/run.sh hands its own
RUN_COMMAND=${WESPEAKER_AVKD_RUN_COMMAND:-$(printf '%q ' "$0" "$@")}
RUN_COMMAND=${RUN_COMMAND% }
unset WESPEAKER_AVKD_RUN_COMMAND
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=1; stop_stage=9  # the first and the last stage run
data_root=          # real VoxCeleb root (see local/prepare_voxceleb.sh); empty: generate the toy corpus
wespeaker_data=     # WeSpeaker's prepared VoxCeleb data folder (vox2_dev/, vox1/) as the audio source
# real VoxCeleb: dev identities held out of VoxCeleb2 dev as data/dev, the seed of their choice and of the dev
# lists, target trials per dev list at most; face frames per second of a track, per segment at most, their size
dev_speakers=100; dev_seed=0; dev_max_targets=10000; face_fps=1; face_max_frames=8; face_size=112
corpus_config=      # yaml merged over the toy corpus defaults (make_toy_corpus --config)
conf_dir=           # set of training configs; default conf/toy, or conf/paper with --data_root
config=             # an extra yaml deep-merged over every training config (e.g. num_epochs: 2)
data=data           # Kaldi data dirs: data/{train,train_mean,dev,eval} (+ {dev,eval}/trials/{O,E,H})
fbank=fbank         # feature archives
fbank_compress=false   # true: stage 2 stores fbank Kaldi-compressed (about 4x smaller; only for feat_source feats)
data_type=raw       # raw: systems read the data dirs' files; shard: stage 2 packs every part into tar shards, read
shard_dir=shards    # stage 2's tar shards with --data_type shard: <shard_dir>/<part>/shard_NNNNNN.tar
exp=exp             # experiments: exp/seed<N>/<system>, exp/tune, exp/report
seeds=1             # eval seeds: stages 3-8 run once per seed, the report reads these
tune=false          # true: stage 6 tunes the KD weights on dev, stage 7 reads exp/tune/kd_weights.yaml
tune_seed=101       # --tune true: the tuning's own seed (its baselines, teacher and tuning runs; never an eval seed)
tune_grid="0.1 1 10 100"   # stage 6's first weights per single KD loss; grown x10 or /10 while the best is at an edge
kd_weights=         # the students' KD weights; default conf/kd_weights.yaml, exp/tune/kd_weights.yaml with --tune true
gpus=               # "" = CPU; "0" = one GPU; "0,1,2,3" = torchrun with one process per GPU
nj=2                # parallel jobs: feature extraction workers; concurrent CPU trainings/extractions
nnodes=1; node_rank=0; master_addr=localhost; master_port=29500  # multi-node torchrun: nodes, rank, rendezvous
trials="O E H"      # trial list names under data/{dev,eval}/trials/
modalities="visual audio"
kd_combos="COS KL MMD"   # KD combinations of the students: the single losses (the default run's budget); all six with --kd_combos
progress=true       # tqdm bars (switched off for jobs that run side by side)
overwrite=false     # true: retrain and re-extract the systems of the stages run instead of reusing finished work
mean_utts=          # utterances of data/train_mean (scoring mean, AS-norm cohort); default 300, 0 (all) with --data_root
score_norm=none     # none: cosine scores; asnorm: also AS-normed scores in <sys>/scores_asnorm and a second report
top_n=300           # AS-norm: how many of the highest cohort scores give each side's mean and std
aug=false           # true: the audio systems train with WeSpeaker's augmentation (conf/aug.yaml; stage 1's noise sets)
musan=; rirs=       # with --aug true: real MUSAN and RIRS_NOISES folders instead of the generated sets (both or neither)
# shellcheck disable=SC2034  # read by tools/parse_options.sh
options=(stage stop_stage data_root wespeaker_data dev_speakers dev_seed dev_max_targets face_fps face_max_frames
         face_size corpus_config conf_dir config data fbank fbank_compress data_type shard_dir exp seeds tune tune_seed
         tune_grid kd_weights gpus nj nnodes node_rank master_addr master_port trials modalities kd_combos progress
         overwrite mean_utts score_norm top_n aug musan rirs)

# --help: the usage line, the option block above (each option's default and meaning) and the stages
help_message="Usage: run.sh [--option value]...
$(sed -n '/^stage=1;/,/^musan=/p' run.sh)
stages: 1 data, 2 fbank (+ shards), 3 baselines, 4 extract+score baselines, 5 teacher (+ kd_export),
        6 KD-weight tuning on dev (--tune true, rounds until the dev EER turns), 7 KD students,
        8 extract+score students (dev and eval), 9 report
stages 3-5 also train the --tune_seed systems with --tune true (scored on dev only)"
# shellcheck source=../../../tools/parse_options.sh
. "${WESPEAKER_AVKD_ROOT}/tools/parse_options.sh"
. local/common.sh
. local/settings.sh "$@"   # checks every option, then the run's settings (feat_source, mean_part, jobs, PLAN_ARGS)

run_t0=$SECONDS
log "run.sh stages $stage-$stop_stage, seeds ${SEEDS[*]}${TUNE_NOTE}, CPU: $(cpu_model), gpus: ${gpus:-none}"

# ---------------------------------------------------------------- stages
if run_stage 1; then
  stage_begin 1 "data"
  if [ -n "$data_root$wespeaker_data" ]; then
    bash local/prepare_voxceleb.sh "${VOX_FLAGS[@]}"
  else
    python3 -m wespeaker_avkd.bin.make_toy_corpus --out "$data" --num_workers "$nj" "${CORPUS_FLAGS[@]}" "${NOPROG[@]}"
  fi
  python3 -m wespeaker_avkd.bin.validate_data "$data/train" "$data/dev" "$data/eval"
  if [ "$aug" = true ]; then   # the noise and RIR sets of the audio systems' augmentation
    python3 -m wespeaker_avkd.bin.make_noise_sets --out "$data" "${SETS_FLAGS[@]}"
  fi
  stage_end
fi

if run_stage 2; then
  what="fbank features (+ data/train_mean)"   # with feat_source wav the audio systems compute fbank on the fly
  if [ "$feat_source" = wav ]; then what="data/train_mean only (dataset_args.feat_source: wav, no fbank archives)"; fi
  stage_begin 2 "$what"
  for part in train dev eval; do
    need "$data/$part/wav.scp" 1
    if [ "$feat_source" = wav ]; then continue; fi
    python3 -m wespeaker_avkd.bin.compute_fbank --data "$data/$part" --out "$fbank/$part" --nj "$nj" "${COMPRESS_FLAGS[@]}"
  done
  if [ "$mean_utts" -gt 0 ]; then
    python3 -m wespeaker_avkd.bin.subset_data_dir --src "$data/train" --dst "$data/train_mean" --num_utts "$mean_utts"
  fi
  if [ "$data_type" = shard ]; then   # every part a system trains on or embeds, as tar shards + data/<part>/shard.list
    for part in "${SYSTEM_PARTS[@]}"; do
      python3 -m wespeaker_avkd.bin.make_shards --data "$data/$part" --out "$shard_dir/$part" --nj "$nj" "${NOPROG[@]}"
    done
  fi
  stage_end
fi

if run_stage 3; then
  stage_begin 3 "audio and visual baselines, seeds ${TRAIN_SEEDS[*]}"
  need_audio_input "$data/train"
  run_jobs train_cmd "$jobs" stage3_train train 3
  stage_end
fi

if run_stage 4; then
  stage_begin 4 "extract + score baselines"
  run_jobs extract_cmd "$jobs" stage4_extract extract 4
  for part in dev eval; do run_jobs score_cmd 1 "stage4_score_$part" score 4 "$part"; done
  stage_end
fi

if run_stage 5; then
  stage_begin 5 "GATE fusion teacher on frozen baseline embeddings (+ kd_export), seeds ${TRAIN_SEEDS[*]}"
  run_jobs train_cmd "$jobs" stage5_train train 5
  run_jobs extract_cmd "$jobs" stage5_extract extract 5
  run_jobs extract_cmd 1 stage5_kd_export kd_export
  for part in dev eval; do run_jobs score_cmd 1 "stage5_score_$part" score 5 "$part"; done
  stage_end
fi

if run_stage 6 && [ "$tune" != true ]; then
  log "stage 6: KD-weight tuning skipped (--tune false; students use $kd_weights)"
elif run_stage 6; then
  stage_begin 6 "KD-weight tuning on dev: ${MODALITIES[*]} x COS KL MMD from weights ${GRID[*]} (seed $tune_seed)"
  round=1   # the planner grows each loss's grid while its best weight is at an edge, and says when to stop
  while :; do
    log "  round $round"
    run_jobs train_cmd "$jobs" "stage6_train_r$round" train 6 --tune_round "$round"
    run_jobs extract_cmd "$jobs" "stage6_extract_r$round" extract 6 --tune_round "$round"
    run_jobs score_cmd 1 "stage6_score_dev_r$round" score 6 dev --tune_round "$round"
    next=$(plan tune_next --tune_round "$round")
    if [ "$next" != more ]; then break; fi
    round=$((round + 1))
  done
  run_jobs score_cmd 1 stage6_select select
  stage_end
fi

if run_stage 7; then
  stage_begin 7 "KD students ${MODALITIES[*]} x ${COMBOS[*]}, seeds ${SEEDS[*]}, weights $kd_weights"
  run_jobs train_cmd "$jobs" stage7_train train 7
  stage_end
fi

if run_stage 8; then
  stage_begin 8 "extract + score KD students (dev: the report's choice of the best student; eval)"
  run_jobs extract_cmd "$jobs" stage8_extract extract 8
  for part in dev eval; do run_jobs score_cmd 1 "stage8_score_$part" score 8 "$part"; done
  stage_end
fi

if run_stage 9; then
  stage_begin 9 "report (--score_norm $score_norm, seeds ${SEEDS[*]})"
  run_jobs score_cmd 1 stage9_report report "--command=$RUN_COMMAND"
  stage_end
fi
log "done (stages $stage-$stop_stage) in $((SECONDS - run_t0)) s"
