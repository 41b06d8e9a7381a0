#!/usr/bin/env bash
# Audio-visual -> single-modality knowledge distillation for person verification (Zhang, Chen, Qian,
# Interspeech 2021), WeSpeaker-style. See README.md in this directory for what each stage reads and writes.
#
#   bash run.sh                                    # every stage, embedded toy corpus, CPU
#   bash run.sh --stage 6 --stop_stage 7           # only the KD students (train + extract + score)
#   bash run.sh --data_root /data/voxceleb --gpus 0,1,2,3   # real VoxCeleb with the paper's configs
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

stage=1
stop_stage=8
data_root=          # real VoxCeleb root (see local/prepare_voxceleb.sh); empty: generate the toy corpus
corpus_config=      # yaml merged over the toy corpus defaults (make_toy_corpus --config)
conf_dir=           # set of training configs; default conf/toy, or conf/paper with --data_root
config=             # an extra yaml deep-merged over every training config (e.g. num_epochs: 2)
data=data           # Kaldi data dirs: data/train, data/eval (+ eval/trials/{O,E,H})
fbank=fbank         # feature archives
exp=exp             # experiment dirs
gpus=               # "" = CPU; "0" = one GPU; "0,1,2,3" = torchrun with one process per GPU
nj=2                # parallel jobs: feature extraction workers; concurrent CPU trainings/extractions
nnodes=1            # multi-node torchrun: number of nodes, this node's rank, rendezvous address
node_rank=0
master_addr=localhost
master_port=29500
trials="O E H"
modalities="visual audio"
kd_combos="COS KL MMD COS+KL COS+MMD KL+MMD"
progress=true       # tqdm bars (switched off for jobs that run side by side)
overwrite=false     # true: retrain (delete checkpoints) and re-extract the systems of the stages run, instead of
                    # resuming / reusing finished work
mean_utts=          # students: embed only this many training utterances (evenly spaced) for the mean vector;
                    # default 300 on the toy corpus, 0 (= the whole training set) with --data_root

help_message="Usage: $0 [--stage N] [--stop_stage M] [--data_root DIR] [--conf_dir DIR] [--config FILE]
  [--corpus_config FILE] [--gpus 0,1] [--nj N] [--data DIR] [--exp DIR] [--trials 'O E H'] [--overwrite true]
stages: 1 data, 2 fbank, 3 baselines, 4 extract+score baselines, 5 teacher (+ kd_export),
        6 KD students, 7 extract+score students, 8 report"
. "${WESPEAKER_AVKD_ROOT}/tools/parse_options.sh"

if [ $# -gt 0 ]; then echo "$0: unexpected argument '$1'" >&2; echo "$help_message" >&2; exit 1; fi
if [ -z "$conf_dir" ]; then
  if [ -n "$data_root" ]; then conf_dir=conf/paper; else conf_dir=conf/toy; fi
fi
if [ -z "$mean_utts" ]; then
  if [ -n "$data_root" ]; then mean_utts=0; else mean_utts=300; fi
fi
# The baselines and the teacher embed the whole training set (the teacher trains on it, KD reads it); the
# students only need a mean vector for scoring, taken from train_mean (a subset) unless mean_utts is 0.
student_train=train
if [ "$mean_utts" -gt 0 ]; then student_train=train_mean; fi
for f in audio.yaml visual.yaml teacher.yaml kd.yaml; do
  [ -f "$conf_dir/$f" ] || { echo "$0: $conf_dir/$f is missing (--conf_dir)" >&2; exit 1; }
done

ncores=$(python3 -c "import os; print(len(os.sched_getaffinity(0)))")
num_gpus=0
if [ -n "$gpus" ]; then num_gpus=$(echo "$gpus" | awk -F',' '{print NF}'); fi
# CPU runs several trainings side by side (each with its share of the cores): small convolutions use two
# cores poorly, two single-core jobs keep both busy. GPU runs go one after another.
if [ "$num_gpus" -gt 0 ]; then jobs=1; else jobs=$(( nj < 1 ? 1 : nj )); fi
threads=$ncores      # torch threads of one job; run_jobs lowers it while jobs run side by side
side_by_side=false
extra_config=()
if [ -n "$config" ]; then extra_config=(--config "$config"); fi
trial_paths=""
for t in $trials; do trial_paths="$trial_paths $data/eval/trials/$t"; done

log() { echo "[$(date '+%H:%M:%S')] $*"; }

# Run a trainer: plain python on CPU or one GPU, torchrun with one process per GPU otherwise.
# shellcheck disable=SC2046
train_cmd() {
  if [ "$num_gpus" -gt 1 ] || [ "$nnodes" -gt 1 ]; then
    CUDA_VISIBLE_DEVICES="$gpus" torchrun --nnodes="$nnodes" --node_rank="$node_rank" \
      --nproc_per_node="$num_gpus" --master_addr="$master_addr" --master_port="$master_port" \
      -m wespeaker_avkd.bin.train --device cuda $(progress_args) $(overwrite_args --overwrite) "$@"
  elif [ "$num_gpus" -eq 1 ]; then
    CUDA_VISIBLE_DEVICES="$gpus" python3 -m wespeaker_avkd.bin.train --device cuda $(progress_args) \
      $(overwrite_args --overwrite) "$@"
  else
    python3 -m wespeaker_avkd.bin.train --device cpu --num_threads "$threads" $(progress_args) \
      $(overwrite_args --overwrite) "$@"
  fi
}

device_args() {
  if [ "$num_gpus" -gt 0 ]; then echo "--device cuda"; else echo "--device cpu --num_threads $threads"; fi
}

overwrite_args() { if [ "$overwrite" = true ]; then echo "$1"; fi; }

progress_args() {
  if [ "$progress" = true ] && [ "$side_by_side" = false ]; then echo ""; else echo "--no_progress"; fi
}

# run_jobs NAME1 CMD1 NAME2 CMD2 ...: each CMD (a shell function call as a string) runs with at most $jobs
# at a time; a job's output goes to $exp/logs/NAME.log when jobs run side by side. Fails if any job fails.
run_jobs() {
  local running=0 failed=0 name cmd
  mkdir -p "$exp/logs"
  if [ "$jobs" -gt 1 ]; then side_by_side=true; threads=$(( ncores / jobs > 0 ? ncores / jobs : 1 )); fi
  while [ $# -gt 0 ]; do
    name=$1; cmd=$2; shift 2
    if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
    if [ "$jobs" -eq 1 ]; then
      eval "$cmd" || failed=1
    else
      log "  start $name (log: $exp/logs/$name.log)"
      ( eval "$cmd" > "$exp/logs/$name.log" 2>&1 || { echo "FAILED: see $exp/logs/$name.log" >&2; exit 1; } ) &
      running=$((running + 1))
    fi
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
  side_by_side=false; threads=$ncores
  if [ "$failed" -ne 0 ]; then echo "$0: a job failed (logs under $exp/logs)" >&2; return 1; fi
}

# extract_system NAME SUBSET [extract args...]: embeddings of data/SUBSET (+ its mean vector) and of
# data/eval; "/train/" in the extra args (the fusion teacher's input scps) becomes "/eval/" for the eval set.
extract_system() {
  local name=$1 subset=$2; shift 2
  # shellcheck disable=SC2046
  python3 -m wespeaker_avkd.bin.extract --exp_dir "$exp/$name" --data "$data/$subset" \
    --out_dir "$exp/$name/embeddings/$subset" --mean_vec $(device_args) $(progress_args) \
    $(overwrite_args --force) "$@"
  # shellcheck disable=SC2046
  python3 -m wespeaker_avkd.bin.extract --exp_dir "$exp/$name" --data "$data/eval" \
    --out_dir "$exp/$name/embeddings/eval" $(device_args) $(progress_args) $(overwrite_args --force) \
    "${@//\/train\//\/eval\/}"
}

# score_system NAME SUBSET: cosine scores on every trial list (mean of SUBSET's embeddings subtracted),
# EER/minDCF json and a one-line summary per list.
score_system() {
  local name=$1 subset=$2 t
  # shellcheck disable=SC2086
  python3 -m wespeaker_avkd.bin.score --embeddings "$exp/$name/embeddings/eval/xvector.scp" \
    --trials $trial_paths --output_dir "$exp/$name/scores" \
    --mean_vec "$exp/$name/embeddings/$subset/mean_vec.npy"
  for t in $trials; do
    python3 -m wespeaker_avkd.bin.compute_metrics "$exp/$name/scores/$t.score" \
      --json "$exp/$name/scores/$t.json" > "$exp/$name/scores/${t}_result"
    echo "$name $t: $(cat "$exp/$name/scores/${t}_result")"
  done
}

student_name() { echo "${1}_kd_$(echo "$2" | tr 'A-Z+' 'a-z_')"; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: data"
  if [ -n "$data_root" ]; then
    bash local/prepare_voxceleb.sh --data_root "$data_root" --out "$data"
  elif [ -f "$data/eval/trials/O" ] && [ -f "$data/train/utt2spk" ] && [ -f "$data/.toy_corpus_done" ]; then
    log "  $data already holds the toy corpus; skipping (delete $data to regenerate)"
  else
    corpus_args=()
    if [ -n "$corpus_config" ]; then corpus_args=(--config "$corpus_config"); fi
    # shellcheck disable=SC2046
    python3 -m wespeaker_avkd.bin.make_toy_corpus --out "$data" --num_workers "$nj" "${corpus_args[@]}" \
      $( [ "$progress" = true ] || echo --no_progress )
    touch "$data/.toy_corpus_done"
  fi
  python3 -m wespeaker_avkd.bin.validate_data "$data/train"
  python3 -m wespeaker_avkd.bin.validate_data "$data/eval"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: fbank features"
  for part in train eval; do
    python3 -m wespeaker_avkd.bin.compute_fbank --data "$data/$part" --out "$fbank/$part" --nj "$nj"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: audio and visual baselines"
  args=()
  for mod in audio visual; do
    args+=("${mod}_baseline" "train_cmd --config $conf_dir/$mod.yaml ${extra_config[*]} \
      --exp_dir $exp/${mod}_baseline --train_data $data/train")
  done
  run_jobs "${args[@]}"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: extract + score baselines"
  run_jobs audio_baseline_extract "extract_system audio_baseline train" \
           visual_baseline_extract "extract_system visual_baseline train"
  for mod in audio visual; do score_system "${mod}_baseline" train; done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: GATE fusion teacher on frozen baseline embeddings"
  train_cmd --config "$conf_dir/teacher.yaml" "${extra_config[@]}" --exp_dir "$exp/teacher" \
    --train_data "$data/train" \
    --embedding_dirs.audio "$exp/audio_baseline/embeddings" \
    --embedding_dirs.visual "$exp/visual_baseline/embeddings"
  extract_system teacher train --embedding_scps \
    "audio=$exp/audio_baseline/embeddings/train/xvector.scp" \
    "visual=$exp/visual_baseline/embeddings/train/xvector.scp"
  score_system teacher train
  python3 -m wespeaker_avkd.bin.extract --exp_dir "$exp/teacher" --kd_export \
    --train_scp "$exp/teacher/embeddings/train/xvector.scp"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: KD students ($modalities) x ($kd_combos)"
  args=()
  for mod in $modalities; do
    for combo in $kd_combos; do
      name=$(student_name "$mod" "$combo")
      args+=("$name" "train_cmd --config $conf_dir/$mod.yaml --config $conf_dir/kd.yaml ${extra_config[*]} \
        --exp_dir $exp/$name --train_data $data/train --kd.combo $combo \
        --kd.teacher_dir $exp/teacher/kd_export")
    done
  done
  run_jobs "${args[@]}"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "stage 7: extract + score KD students"
  if [ "$mean_utts" -gt 0 ]; then
    python3 -m wespeaker_avkd.bin.subset_data_dir --src "$data/train" --dst "$data/train_mean" --num_utts "$mean_utts"
  fi
  args=()
  for mod in $modalities; do
    for combo in $kd_combos; do
      name=$(student_name "$mod" "$combo")
      args+=("${name}_extract" "extract_system $name $student_train")
    done
  done
  run_jobs "${args[@]}"
  for mod in $modalities; do
    for combo in $kd_combos; do score_system "$(student_name "$mod" "$combo")" "$student_train"; done
  done
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log "stage 8: report"
  # shellcheck disable=SC2086
  python3 -m wespeaker_avkd.bin.report --exp "$exp" --out "$exp/report" --trials $trials \
    --modalities $modalities --kd_combos $kd_combos
fi
log "done (stages $stage-$stop_stage)"
