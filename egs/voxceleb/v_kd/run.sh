#!/usr/bin/env bash
# Audio-visual -> single-modality knowledge distillation for person verification (Zhang, Chen, Qian,
# Interspeech 2021), WeSpeaker-style. See README.md in this directory for what each stage reads and writes.
#
#   bash run.sh                                    # every stage, embedded toy corpus, CPU, seed 1
#   bash run.sh --seeds "1 2 3" --tune true        # the full protocol: KD weights tuned on dev, 3 seeds
#   bash run.sh --stage 7 --stop_stage 8           # only the KD students (train + extract + score)
#   bash run.sh --data_root /data/voxceleb --gpus 0,1,2,3   # real VoxCeleb with the paper's configs
#
# The stages call programs; which systems a stage trains, embeds and scores comes from the planner
# (wespeaker_avkd/bin/plan.py) as job files, run through the job commands of cmd.sh (local: tools/run.py).
# Shell safety: no option value reaches eval, arithmetic expansion or an unquoted expansion (local/common.sh).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

stage=1
stop_stage=9
data_root=          # real VoxCeleb root (see local/prepare_voxceleb.sh); empty: generate the toy corpus
wespeaker_data=     # WeSpeaker's prepared VoxCeleb data folder (vox2_dev/, vox1/) as the audio source
dev_speakers=100    # real VoxCeleb: VoxCeleb2 dev identities held out as data/dev (0: none)
dev_seed=0          # real VoxCeleb: seed of the dev identity choice and of the dev lists
dev_max_targets=10000   # real VoxCeleb: target trials per dev list at most
face_fps=1          # real VoxCeleb: frames taken per second of an mp4 face track
face_max_frames=8   # real VoxCeleb: at most this many frames per segment
face_size=112       # real VoxCeleb: stored frame size in pixels (the visual config's image_size)
corpus_config=      # yaml merged over the toy corpus defaults (make_toy_corpus --config)
conf_dir=           # set of training configs; default conf/toy, or conf/paper with --data_root
config=             # an extra yaml deep-merged over every training config (e.g. num_epochs: 2)
data=data           # Kaldi data dirs: data/{train,train_mean,dev,eval} (+ {dev,eval}/trials/{O,E,H})
fbank=fbank         # feature archives
fbank_compress=false   # true: stage 2 stores fbank Kaldi-compressed (about 4x smaller; only for feat_source feats)
data_type=raw       # raw: the audio and visual systems read the data dirs' files; shard: stage 2 also packs every
                    # part into tar shards (WeSpeaker's format + faces, data/shards.py) and the systems read those
shard_dir=shards    # stage 2's tar shards with --data_type shard: <shard_dir>/<part>/shard_NNNNNN.tar
exp=exp             # experiments: exp/seed<N>/<system>, exp/tune, exp/report
seeds=1             # training seeds; stages 3-8 run once per seed
tune=false          # true: stage 6 tunes the KD weights on dev, stage 7 reads exp/tune/kd_weights.yaml
tune_grid="0.1 1 10 100"   # weights tried for each single KD loss in stage 6
kd_weights=         # the students' weights (modality -> combo -> alpha/beta/gamma); default conf/kd_weights.yaml,
                    # exp/tune/kd_weights.yaml with --tune true
gpus=               # "" = CPU; "0" = one GPU; "0,1,2,3" = torchrun with one process per GPU
nj=2                # parallel jobs: feature extraction workers; concurrent CPU trainings/extractions
nnodes=1            # multi-node torchrun: number of nodes, this node's rank, rendezvous address
node_rank=0
master_addr=localhost
master_port=29500
trials="O E H"      # trial list names under data/{dev,eval}/trials/
modalities="visual audio"
kd_combos="COS KL MMD COS+KL COS+MMD KL+MMD"
progress=true       # tqdm bars (switched off for jobs that run side by side)
overwrite=false     # true: retrain (old models/ and train_state/ set aside until done) and re-extract the systems
                    # of the stages run, instead of resuming / reusing finished work
mean_utts=          # every system's scoring mean vector comes from this many evenly spaced training utterances
                    # (data/train_mean); default 300 on the toy corpus, 0 (= all of data/train) with --data_root
score_norm=none     # none: cosine scores; asnorm: also AS-normed scores in <sys>/scores_asnorm (cohort: each
                    # system's embeddings of the mean part, one mean per speaker) and a second report
top_n=300           # AS-norm: how many of the highest cohort scores give each side's mean and std
aug=false           # true: every audio system trains with WeSpeaker's augmentation (conf/aug.yaml merged over its
                    # config: speed perturbation, reverb/noise, length filter); stage 1 writes the noise/RIR sets
musan=              # with --aug true: a real MUSAN folder and a real RIRS_NOISES folder instead of the generated
rirs=               # sets (both or neither)
# shellcheck disable=SC2034  # read by tools/parse_options.sh
options=(stage stop_stage data_root wespeaker_data dev_speakers dev_seed dev_max_targets face_fps face_max_frames
         face_size corpus_config conf_dir config data fbank fbank_compress data_type shard_dir exp seeds tune
         tune_grid kd_weights
         gpus nj nnodes node_rank master_addr master_port trials modalities kd_combos progress overwrite mean_utts
         score_norm top_n aug musan rirs)

help_message="Usage: $0 [--stage N] [--stop_stage M] [--seeds '1 2 3'] [--tune true] [--tune_grid '0.1 1 10 100']
  [--kd_weights FILE] [--data_root DIR] [--wespeaker_data DIR] [--dev_speakers N] [--dev_seed N]
  [--dev_max_targets N] [--face_fps F] [--face_max_frames N] [--face_size PX] [--conf_dir DIR] [--config FILE]
  [--corpus_config FILE] [--gpus 0,1] [--nj N] [--data DIR] [--fbank DIR] [--fbank_compress true]
  [--data_type raw|shard] [--shard_dir DIR] [--exp DIR] [--trials 'O E H'] [--modalities 'visual audio']
  [--kd_combos 'COS KL ...'] [--mean_utts N] [--score_norm none|asnorm] [--top_n 300] [--overwrite true]
  [--progress false] [--aug true [--musan DIR --rirs DIR]]
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
    bash local/prepare_voxceleb.sh --data_root "$data_root" --wespeaker_data "$wespeaker_data" --out "$data" \
      --nj "$nj" --dev_speakers "$dev_speakers" --dev_seed "$dev_seed" --dev_max_targets "$dev_max_targets" \
      --need_faces "$need_faces" --face_fps "$face_fps" --face_max_frames "$face_max_frames" \
      --face_size "$face_size" --progress "$progress"
  else
    corpus_args=()
    if [ -n "$corpus_config" ]; then corpus_args=(--config "$corpus_config"); fi
    python3 -m wespeaker_avkd.bin.make_toy_corpus --out "$data" --num_workers "$nj" "${corpus_args[@]}" "${NOPROG[@]}"
  fi
  python3 -m wespeaker_avkd.bin.validate_data "$data/train" "$data/dev" "$data/eval"
  if [ "$aug" = true ]; then   # the noise and RIR sets of the audio systems' augmentation
    sets_args=(--speech_scp "$data/train/wav.scp")
    if [ -n "$musan" ]; then sets_args=(--musan "$musan" --rirs "$rirs"); fi
    python3 -m wespeaker_avkd.bin.make_noise_sets --out "$data" "${sets_args[@]}"
  fi
  stage_end
fi

if run_stage 2; then
  if [ "$feat_source" = wav ]; then   # the audio systems compute fbank from wav.scp on the fly
    stage_begin 2 "data/train_mean only (dataset_args.feat_source: wav, no fbank archives)"
  else
    stage_begin 2 "fbank features (+ data/train_mean)"
  fi
  for part in train dev eval; do
    need "$data/$part/wav.scp" 1
    if [ "$feat_source" = wav ]; then continue; fi
    python3 -m wespeaker_avkd.bin.compute_fbank --data "$data/$part" --out "$fbank/$part" --nj "$nj" "${COMPRESS_FLAGS[@]}"
  done
  if [ "$mean_utts" -gt 0 ]; then
    python3 -m wespeaker_avkd.bin.subset_data_dir --src "$data/train" --dst "$data/train_mean" --num_utts "$mean_utts"
  fi
  if [ "$data_type" = shard ]; then   # every part a system trains on or embeds, as tar shards + data/<part>/shard.list
    system_parts=$(plan parts)   # every part a system embeds (train, the mean part, dev, eval)
    mapfile -t parts <<< "$system_parts"
    for part in "${parts[@]}"; do
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

if run_stage 6; then
  if [ "$tune" != true ]; then
    log "stage 6: KD-weight tuning skipped (--tune false; students use $kd_weights)"
  else
    stage_begin 6 "KD-weight tuning on dev: ${MODALITIES[*]} x COS KL MMD x weights ${GRID[*]} (seed ${SEEDS[0]})"
    run_jobs train_cmd "$jobs" stage6_train train 6
    run_jobs extract_cmd "$jobs" stage6_extract extract 6
    run_jobs score_cmd 1 stage6_score_dev score 6 dev
    run_jobs score_cmd 1 stage6_select select
    stage_end
  fi
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
