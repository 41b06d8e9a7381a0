#!/usr/bin/env bash
# Audio-visual -> single-modality knowledge distillation for person verification (Zhang, Chen, Qian,
# Interspeech 2021), WeSpeaker-style. See README.md in this directory for what each stage reads and writes.
#
#   bash run.sh                                    # every stage, embedded toy corpus, CPU, seed 1
#   bash run.sh --seeds "1 2 3" --tune true        # the full protocol: KD weights tuned on dev, 3 seeds
#   bash run.sh --data_root /data/voxceleb --gpus 0,1,2,3   # real VoxCeleb with the paper's configs
#
# The stages call programs; which systems a stage trains, embeds and scores comes from the planner
# (wespeaker_avkd/bin/plan.py) as job files, run through the job commands of cmd.sh (local: tools/run.py).
# Shell safety: no option value reaches eval, arithmetic expansion or an unquoted expansion (local/common.sh).
set -euo pipefail
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
seeds=1             # training seeds; stages 3-8 run once per seed
tune=false          # true: stage 6 tunes the KD weights on dev, stage 7 reads exp/tune/kd_weights.yaml
tune_grid="0.1 1 10 100"   # weights tried for each single KD loss in stage 6
kd_weights=         # the students' KD weights; default conf/kd_weights.yaml, exp/tune/kd_weights.yaml with --tune true
gpus=               # "" = CPU; "0" = one GPU; "0,1,2,3" = torchrun with one process per GPU
nj=2                # parallel jobs: feature extraction workers; concurrent CPU trainings/extractions
nnodes=1; node_rank=0; master_addr=localhost; master_port=29500  # multi-node torchrun: nodes, rank, rendezvous
trials="O E H"      # trial list names under data/{dev,eval}/trials/
modalities="visual audio"
kd_combos="COS KL MMD COS+KL COS+MMD KL+MMD"
progress=true       # tqdm bars (switched off for jobs that run side by side)
overwrite=false     # true: retrain and re-extract the systems of the stages run instead of reusing finished work
mean_utts=          # utterances of data/train_mean (scoring mean, AS-norm cohort); default 300, 0 (all) with --data_root
score_norm=none     # none: cosine scores; asnorm: also AS-normed scores in <sys>/scores_asnorm and a second report
top_n=300           # AS-norm: how many of the highest cohort scores give each side's mean and std
aug=false           # true: the audio systems train with WeSpeaker's augmentation (conf/aug.yaml; stage 1's noise sets)
musan=; rirs=       # with --aug true: real MUSAN and RIRS_NOISES folders instead of the generated sets (both or neither)
# shellcheck disable=SC2034  # read by tools/parse_options.sh
options=(stage stop_stage data_root wespeaker_data dev_speakers dev_seed dev_max_targets face_fps face_max_frames
         face_size corpus_config conf_dir config data fbank fbank_compress data_type shard_dir exp seeds tune tune_grid
         kd_weights gpus nj nnodes node_rank master_addr master_port trials modalities kd_combos progress overwrite
         mean_utts score_norm top_n aug musan rirs)

# --help: the usage line, the option block above (each option's default and meaning) and the stages
help_message="Usage: run.sh [--option value]...
$(sed -n '/^stage=1;/,/^musan=/p' run.sh)
stages: 1 data, 2 fbank (+ shards), 3 baselines, 4 extract+score baselines, 5 teacher (+ kd_export),
        6 KD-weight tuning on dev (--tune true), 7 KD students, 8 extract+score students, 9 report"
# shellcheck source=../../../tools/parse_options.sh
. "${WESPEAKER_AVKD_ROOT}/tools/parse_options.sh"
. local/common.sh
. local/settings.sh "$@"   # checks every option, then the run's settings (feat_source, mean_part, jobs, PLAN_ARGS)

run_t0=$SECONDS
log "run.sh stages $stage-$stop_stage, seeds ${SEEDS[*]}, CPU: $(cpu_model), gpus: ${gpus:-none}"

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
  stage_begin 3 "audio and visual baselines, seeds ${SEEDS[*]}"
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
  stage_begin 5 "GATE fusion teacher on frozen baseline embeddings (+ kd_export), seeds ${SEEDS[*]}"
  run_jobs train_cmd "$jobs" stage5_train train 5
  run_jobs extract_cmd "$jobs" stage5_extract extract 5
  run_jobs extract_cmd 1 stage5_kd_export kd_export
  for part in dev eval; do run_jobs score_cmd 1 "stage5_score_$part" score 5 "$part"; done
  stage_end
fi

if run_stage 6 && [ "$tune" != true ]; then
  log "stage 6: KD-weight tuning skipped (--tune false; students use $kd_weights)"
elif run_stage 6; then
  stage_begin 6 "KD-weight tuning on dev: ${MODALITIES[*]} x COS KL MMD x weights ${GRID[*]} (seed ${SEEDS[0]})"
  run_jobs train_cmd "$jobs" stage6_train train 6
  run_jobs extract_cmd "$jobs" stage6_extract extract 6
  run_jobs score_cmd 1 stage6_score_dev score 6 dev
  run_jobs score_cmd 1 stage6_select select
  stage_end
fi

if run_stage 7; then
  stage_begin 7 "KD students ${MODALITIES[*]} x ${COMBOS[*]}, seeds ${SEEDS[*]}, weights $kd_weights"
  plan link_tuned   # first seed: a single-loss student that stage 6 trained with the chosen weight is linked
  run_jobs train_cmd "$jobs" stage7_train train 7
  stage_end
fi

if run_stage 8; then
  stage_begin 8 "extract + score KD students"
  run_jobs extract_cmd "$jobs" stage8_extract extract 8
  run_jobs score_cmd 1 stage8_score_eval score 8 eval
  stage_end
fi

if run_stage 9; then
  stage_begin 9 "report (--score_norm $score_norm)"
  run_jobs score_cmd 1 stage9_report report
  stage_end
fi
log "done (stages $stage-$stop_stage) in $((SECONDS - run_t0)) s"
