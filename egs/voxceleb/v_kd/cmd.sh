# shellcheck shell=bash disable=SC2034  # sourced by run.sh, which uses these arrays
# The job commands of run.sh, Kaldi-style (egs/*/cmd.sh). Each is an array that run.sh calls as
#   "${train_cmd[@]}" --max-jobs-run N JOB=1:M LOG COMMAND ARG...
# to run COMMAND M times, the word JOB in LOG and in every ARG replaced by the job's index, at most N at once,
# each job's output in its own LOG; it fails naming the log of each failed job. The default runs the jobs on
# this machine with tools/run.py (the recipe's run.pl).
#   train_cmd:   trainings (stages 3, 5, 6, 7)
#   extract_cmd: embedding extraction and the teacher's KD export (stages 4, 5, 6, 8)
#   score_cmd:   scoring, the KD-weight selection and the report (one light process each)
train_cmd=(python3 "${WESPEAKER_AVKD_ROOT}/tools/run.py")
extract_cmd=(python3 "${WESPEAKER_AVKD_ROOT}/tools/run.py")
score_cmd=(python3 "${WESPEAKER_AVKD_ROOT}/tools/run.py")

# On a cluster, use a queue command that takes the same arguments, e.g. Kaldi's utils/queue.pl (Grid Engine)
# or utils/slurm.pl (Slurm) from a Kaldi checkout on PATH; they turn --max-jobs-run into the array's throttle.
# With GPUs, also pass run.sh --gpus 0 so that each job trains and embeds on its GPU:
# train_cmd=(queue.pl --gpu 1 --mem 16G)
# extract_cmd=(queue.pl --gpu 1 --mem 8G)
# score_cmd=(queue.pl --mem 4G)
# train_cmd=(slurm.pl --gpu 1 --mem 16G)
