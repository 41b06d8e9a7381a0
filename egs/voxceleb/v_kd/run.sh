#!/usr/bin/env bash
# Audio-visual -> single-modality knowledge distillation for person verification (Zhang, Chen, Qian,
# Interspeech 2021), WeSpeaker-style. See README.md in this directory for what each stage reads and writes.
#
#   bash run.sh                                    # every stage, embedded toy corpus, CPU, seed 1
#   bash run.sh --seeds "1 2 3" --tune true        # the full protocol: KD weights tuned on dev, 3 seeds
#   bash run.sh --stage 7 --stop_stage 8           # only the KD students (train + extract + score)
#   bash run.sh --data_root /data/voxceleb --gpus 0,1,2,3   # real VoxCeleb with the paper's configs
#
# Shell safety: no option value reaches eval, arithmetic expansion or an unquoted expansion (local/common.sh).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

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
. local/jobs.sh
. local/systems.sh
. local/settings.sh "$@"   # checks every option, then the run's settings (feat_source, mean_part, jobs, ...)

run_t0=$SECONDS
log "run.sh stages $stage-$stop_stage, seeds ${SEEDS[*]}, CPU: $(cpu_model) ($ncores cores usable), gpus: ${gpus:-none}"

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
    for part in "${SYSTEM_PARTS[@]}"; do
      python3 -m wespeaker_avkd.bin.make_shards --data "$data/$part" --out "$shard_dir/$part" --nj "$nj" "${NOPROG[@]}"
    done
  fi
  stage_end
fi

if run_stage 3; then
  stage_begin 3 "audio and visual baselines, seeds ${SEEDS[*]}"
  need_audio_input "$data/train"
  if [ "$data_type" = shard ]; then need "$data/train/shard.list" 2; fi
  need_aug_sets
  pool_begin
  for seed in "${SEEDS[@]}"; do
    for mod in audio visual; do
      mod_aug "$mod"
      pool_run "seed${seed}_${mod}_baseline" train_cmd --config "$conf_dir/$mod.yaml" "${MOD_AUG[@]}" \
        "${CONFIG_FLAGS[@]}" "${DATA_FLAGS[@]}" --exp_dir "$(sys_dir "$seed" "${mod}_baseline")" \
        --train_data "$data/train" --seed "$seed"
    done
  done
  pool_end
  stage_end
fi

if run_stage 4; then
  stage_begin 4 "extract + score baselines"
  for part in "${SYSTEM_PARTS[@]}"; do need "$data/$part/utt2spk" "1-2"; done
  ejobs=$(new_job_file stage4_extract)
  for seed in "${SEEDS[@]}"; do
    for mod in audio visual; do
      d=$(sys_dir "$seed" "${mod}_baseline")
      need "$d/models/avg_model.pt" 3
      for part in "${SYSTEM_PARTS[@]}"; do extract_add "$ejobs" "$d" "$part" "$(is_mean_part "$part")"; done
    done
  done
  extract_run "$ejobs" stage4_extract
  for part in dev eval; do
    sjobs=$(new_job_file "stage4_score_$part")
    for seed in "${SEEDS[@]}"; do
      for mod in audio visual; do score_add "$sjobs" "$(sys_dir "$seed" "${mod}_baseline")" "$part"; done
    done
    score_run "$sjobs" "$part"
  done
  stage_end
fi

if run_stage 5; then
  stage_begin 5 "GATE fusion teacher on frozen baseline embeddings (+ kd_export), seeds ${SEEDS[*]}"
  for seed in "${SEEDS[@]}"; do
    for mod in audio visual; do
      for part in "${SYSTEM_PARTS[@]}"; do
        need "$(sys_dir "$seed" "${mod}_baseline")/embeddings/$part/xvector.scp" 4
      done
    done
  done
  pool_begin
  for seed in "${SEEDS[@]}"; do
    pool_run "seed${seed}_teacher" train_cmd --config "$conf_dir/teacher.yaml" "${CONFIG_FLAGS[@]}" \
      --exp_dir "$(sys_dir "$seed" teacher)" --train_data "$data/train" --seed "$seed" \
      --embedding_dirs.audio "$(sys_dir "$seed" audio_baseline)/embeddings" \
      --embedding_dirs.visual "$(sys_dir "$seed" visual_baseline)/embeddings"
  done
  pool_end
  ejobs=$(new_job_file stage5_extract)
  for seed in "${SEEDS[@]}"; do
    d=$(sys_dir "$seed" teacher)
    for part in "${SYSTEM_PARTS[@]}"; do
      mapfile -t scps < <(teacher_scps "$seed" "$part")
      extract_add "$ejobs" "$d" "$part" "$(is_mean_part "$part")" "${scps[@]}"
    done
  done
  extract_run "$ejobs" stage5_extract
  for seed in "${SEEDS[@]}"; do
    d=$(sys_dir "$seed" teacher)
    python3 -m wespeaker_avkd.bin.extract --exp_dir "$d" --kd_export --train_scp "$d/embeddings/train/xvector.scp"
  done
  for part in dev eval; do
    sjobs=$(new_job_file "stage5_score_$part")
    for seed in "${SEEDS[@]}"; do score_add "$sjobs" "$(sys_dir "$seed" teacher)" "$part"; done
    score_run "$sjobs" "$part"
  done
  stage_end
fi

if run_stage 6; then
  if [ "$tune" != true ]; then
    log "stage 6: KD-weight tuning skipped (--tune false; students use $kd_weights)"
  else
    stage_begin 6 "KD-weight tuning on dev: ${MODALITIES[*]} x COS KL MMD x weights ${GRID[*]} (seed $first_seed)"
    teacher_export=$(sys_dir "$first_seed" teacher)/kd_export
    need "$teacher_export/xvector.scp" 5
    for part in "$mean_part" dev; do need "$data/$part/utt2spk" "1-2"; done
    for t in "${TRIALS[@]}"; do need "$data/dev/trials/$t" 1; done
    need_aug_sets
    pool_begin
    for mod in "${MODALITIES[@]}"; do
      mod_aug "$mod"
      for loss in COS KL MMD; do
        for w in "${GRID[@]}"; do
          d=$(tune_dir "$mod" "$loss" "$w")
          pool_run "tune_${mod}_${loss}_w$w" train_cmd --config "$conf_dir/$mod.yaml" "${MOD_AUG[@]}" \
            "${KD_CONFIGS[@]}" "${CONFIG_FLAGS[@]}" "${DATA_FLAGS[@]}" --exp_dir "$d" --train_data "$data/train" \
            --seed "$first_seed" \
            --kd.combo "$loss" --kd.teacher_dir "$teacher_export" --kd.weights_file conf/kd_weights.yaml \
            "+kd.$(kd_weight_key "$loss")=$w"
        done
      done
    done
    pool_end
    ejobs=$(new_job_file stage6_extract)
    sjobs=$(new_job_file stage6_score_dev)
    for mod in audio visual; do   # the baselines' dev scores: the selection's reference
      d=$(sys_dir "$first_seed" "${mod}_baseline")
      need "$d/embeddings/dev/xvector.scp" 4
      score_add "$sjobs" "$d" dev
    done
    for mod in "${MODALITIES[@]}"; do
      for loss in COS KL MMD; do
        for w in "${GRID[@]}"; do
          d=$(tune_dir "$mod" "$loss" "$w")
          extract_add "$ejobs" "$d" "$mean_part" 1
          extract_add "$ejobs" "$d" dev 0
          score_add "$sjobs" "$d" dev
        done
      done
    done
    extract_run "$ejobs" stage6_extract
    score_run "$sjobs" dev
    python3 -m wespeaker_avkd.bin.select_kd_weights --sweep_dir "$exp/tune" --modalities "${MODALITIES[@]}" \
      --losses COS KL MMD --grid "${GRID[@]}" --dev_trials "${TRIALS[@]}" --out "$exp/tune/kd_weights.yaml" \
      --table "$exp/tune/dev_results.md" --baseline_dir "$exp/seed$first_seed"
    stage_end
  fi
fi

if run_stage 7; then
  stage_begin 7 "KD students ${MODALITIES[*]} x ${COMBOS[*]}, seeds ${SEEDS[*]}, weights $kd_weights"
  need "$kd_weights" "6 (with --tune true), or pass --kd_weights"
  for seed in "${SEEDS[@]}"; do need "$(sys_dir "$seed" teacher)/kd_export/xvector.scp" 5; done
  for mod in "${MODALITIES[@]}"; do
    for combo in "${COMBOS[@]}"; do
      case "$combo" in COS|KL|MMD) reuse_tuned "$mod" "$combo" ;; esac
    done
  done
  need_aug_sets
  pool_begin
  for seed in "${SEEDS[@]}"; do
    for mod in "${MODALITIES[@]}"; do
      mod_aug "$mod"
      for combo in "${COMBOS[@]}"; do
        name=$(student_name "$mod" "$combo")
        pool_run "seed${seed}_$name" train_cmd --config "$conf_dir/$mod.yaml" "${MOD_AUG[@]}" "${KD_CONFIGS[@]}" \
          "${CONFIG_FLAGS[@]}" "${DATA_FLAGS[@]}" --exp_dir "$(sys_dir "$seed" "$name")" --train_data "$data/train" \
          --seed "$seed" \
          --kd.combo "$combo" --kd.teacher_dir "$(sys_dir "$seed" teacher)/kd_export" --kd.weights_file "$kd_weights"
      done
    done
  done
  pool_end
  stage_end
fi

if run_stage 8; then
  stage_begin 8 "extract + score KD students"
  for part in "$mean_part" eval; do need "$data/$part/utt2spk" "1-2"; done
  ejobs=$(new_job_file stage8_extract)
  sjobs=$(new_job_file stage8_score_eval)
  for seed in "${SEEDS[@]}"; do
    for mod in "${MODALITIES[@]}"; do
      for combo in "${COMBOS[@]}"; do
        d=$(sys_dir "$seed" "$(student_name "$mod" "$combo")")
        need "$d/models/avg_model.pt" 7
        extract_add "$ejobs" "$d" "$mean_part" 1
        extract_add "$ejobs" "$d" eval 0
        score_add "$sjobs" "$d" eval
      done
    done
  done
  extract_run "$ejobs" stage8_extract
  score_run "$sjobs" eval
  stage_end
fi

if run_stage 9; then
  stage_begin 9 "report (from each system's ${SCORE_DIRS[*]})"
  for scores in "${SCORE_DIRS[@]}"; do
    made_by=5
    if [ "$scores" = scores_asnorm ]; then made_by="5 with --score_norm asnorm"; fi
    for seed in "${SEEDS[@]}"; do need "$(sys_dir "$seed" teacher)/$scores/eval/${TRIALS[0]}.score" "$made_by"; done
  done
  for scores in "${SCORE_DIRS[@]}"; do   # scores -> exp/report, scores_asnorm -> exp/report_asnorm
    python3 -m wespeaker_avkd.bin.report --exp "$exp" --seeds "${SEEDS[@]}" --part eval --trials "${TRIALS[@]}" \
      --utt2spk "$data/eval/utt2spk" --modalities "${MODALITIES[@]}" --kd_combos "${COMBOS[@]}" \
      --scores_dir "$scores" --out "$exp/report${scores#scores}"
  done
  stage_end
fi
log "done (stages $stage-$stop_stage) in $((SECONDS - run_t0)) s"
