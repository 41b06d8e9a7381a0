#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # settings come from run.sh, which sources this file
# Shared helpers of run.sh: logging, option checks, input checks, stage timing, the planner and its jobs.
# Sourced, never run. Safety rule of the recipe: no option value reaches eval, arithmetic expansion or an
# unquoted expansion. Numeric options are checked against a decimal-integer pattern and then only compared with
# [ -ge ] etc.; word lists are split with `read -ra` (no globbing); commands are arrays or functions with
# arguments; a job is an argument vector (wespeaker_avkd/bin/plan.py), never a string that is evaluated.

log() { printf '[%s] %s\n' "$(date '+%H:%M:%S')" "$*"; }

# die MESSAGE: a refused option or missing input is one stderr line 'run.sh: MESSAGE' and exit status 2, as a named
# error of the package's entry points is.
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 2; }

# is_uint VALUE: true for a plain decimal integer without sign or leading zero (0, 7, 12).
is_uint() { [[ $1 =~ ^(0|[1-9][0-9]{0,8})$ ]]; }

# need_uint NAME VALUE [MIN]: refuse VALUE unless it is a decimal integer >= MIN (default 0).
need_uint() {
  is_uint "$2" || die "--$1 must be a non-negative integer, got $(printf '%q' "$2")"
  if [ "$2" -lt "${3:-0}" ]; then die "--$1 must be at least $3, got $2"; fi
}

# split_words NAME VALUE PATTERN ARRAY: split VALUE on blanks into ARRAY (no globbing); every word must match
# the regex PATTERN, none may repeat, and the list may not be empty.
split_words() {
  local -n _sw_out=$4
  read -r -a _sw_out <<< "$2"
  [ "${#_sw_out[@]}" -gt 0 ] || die "--$1 must not be empty"
  local w
  local -A seen=()
  for w in "${_sw_out[@]}"; do
    [[ $w =~ $3 ]] || die "--$1: invalid entry $(printf '%q' "$w")"
    [ -z "${seen[$w]:-}" ] || die "--$1: $w given twice"
    seen[$w]=1
  done
}

# need_path NAME VALUE: a path option; tabs and newlines are refused (job files are tab-separated lines).
need_path() {
  case "$2" in
    *$'\t'*|*$'\n'*) die "--$1 may not contain a tab or a newline" ;;
  esac
}

# need FILE STAGES: stop the stage when an input is missing and say which stages make it.
need() { [ -e "$1" ] || die "$1 missing: run stage $2 first"; }

# need_audio_input DIR: stop unless DIR holds the table the audio systems read ($feat_source: feats.scp for
# feats, wav.scp for wav, for auto feats.scp when DIR has one, else wav.scp).
need_audio_input() {
  if [ "$feat_source" = feats ] || { [ "$feat_source" = auto ] && [ -f "$1/feats.scp" ]; }; then
    need "$1/feats.scp" "1-2"
  else
    need "$1/wav.scp" 1
  fi
}

# stage_begin N TEXT / stage_end: log a stage's start and its wall time.
stage_begin() { _stage_no=$1; _stage_t0=$SECONDS; log "stage $1: $2"; }
stage_end() { log "stage $_stage_no done in $((SECONDS - _stage_t0)) s"; }

# run_stage N: true when stage N is inside --stage .. --stop_stage.
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# plan STEP [ARG...]: the recipe's planner (wespeaker_avkd/bin/plan.py) with this run's settings (PLAN_ARGS).
plan() { python3 -m wespeaker_avkd.bin.plan "$@" "${PLAN_ARGS[@]}"; }

# run_jobs CMD MAX NAME STEP [ARG...]: the planner's jobs of STEP into $exp/jobs/NAME.jobs, then run through the
# job command CMD (an array of cmd.sh) as the array job NAME: at most MAX at once, job i logging to
# $exp/logs/NAME.i.log. A failed job fails the stage with its exit status (the runner names its log).
run_jobs() {
  local -n _rj_cmd=$1
  local max=$2 name=$3 n
  shift 3
  n=$(plan "$@" --out "$exp/jobs/$name.jobs")
  if [ "$n" = 0 ]; then log "  $name: nothing to run"; return 0; fi
  log "  $name: $n job(s), logs $exp/logs/$name.<job>.log"
  "${_rj_cmd[@]}" --max-jobs-run "$max" "JOB=1:$n" "$exp/logs/$name.JOB.log" \
    python3 -m wespeaker_avkd.bin.plan job "$exp/jobs/$name.jobs" JOB
}

# cpu_model: the processor model (logged with every run: stage times depend on it).
cpu_model() {
  local m
  m=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') || true
  printf '%s' "${m:-unknown}"
}
