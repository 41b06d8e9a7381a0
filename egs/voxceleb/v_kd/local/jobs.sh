#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2034  # settings come from run.sh, which sources this file
# Job pool of run.sh: up to $jobs commands side by side, each a function or program with its arguments (never
# a string that is evaluated). Sourced, never run. Uses: $exp, $jobs (validated integer), $ncores.
#
#   pool_begin
#   pool_run NAME train_cmd --config a.yaml --exp_dir "exp/x y"   # waits for a free slot
#   pool_end                                                       # names every failed job and its log; returns
#                                                                  # the first failed job's exit status (2: named error)

declare -A _pool_pids=()   # pid -> job name
declare -A _pool_rc=()     # failed job name -> its exit status
_pool_failed=()

# refresh_flags: the per-job flags that depend on whether jobs run side by side (threads, progress bars).
refresh_flags() {
  if [ "$num_gpus" -gt 0 ]; then DEV_FLAGS=(--device cuda); else DEV_FLAGS=(--device cpu --num_threads "$threads"); fi
  if [ "$progress" = true ] && [ "$side_by_side" = false ]; then PROG_FLAGS=(); else PROG_FLAGS=(--no_progress); fi
}

pool_begin() {
  _pool_failed=()
  _pool_pids=()
  _pool_rc=()
  mkdir -p "$exp/logs"
  if [ "$jobs" -gt 1 ]; then
    side_by_side=true
    # expr, not shell arithmetic: both operands are validated integers, and expr never evaluates its input.
    # shellcheck disable=SC2003
    threads=$(expr "$ncores" / "$jobs")
    if [ "$threads" -lt 1 ]; then threads=1; fi
  fi
  refresh_flags
}

# _pool_job LOG CMD...: run CMD in a subshell with `set -e`; its output goes to LOG (and to the terminal when
# jobs run one at a time).
_pool_job() {
  local logf=$1; shift
  if [ "$side_by_side" = true ]; then
    ( set -e; "$@" ) > "$logf" 2>&1
  else
    ( set -e; "$@" ) 2>&1 | tee "$logf"
  fi
}

# _pool_reap: collect every finished job (its exit status stays available to `wait PID` after bash reaped it).
_pool_reap() {
  local pid rc
  for pid in "${!_pool_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then continue; fi
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then _pool_failed+=("${_pool_pids[$pid]}"); _pool_rc["${_pool_pids[$pid]}"]=$rc; fi
    unset "_pool_pids[$pid]"
  done
}

# _pool_wait_below N: block until fewer than N jobs run (polling: `wait -n` cannot name the job it reaped
# reliably once a job has ended before the call).
_pool_wait_below() {
  _pool_reap
  while [ "${#_pool_pids[@]}" -ge "$1" ]; do sleep 0.2; _pool_reap; done
}

# pool_run NAME CMD [ARG...]: start CMD as job NAME (log: $exp/logs/NAME.log) once a slot is free.
pool_run() {
  local name=$1; shift
  _pool_wait_below "$jobs"
  log "  start $name (log: $exp/logs/$name.log)"
  _pool_job "$exp/logs/$name.log" "$@" &
  _pool_pids[$!]=$name
}

# pool_end: wait for every job; when any failed, name each failed job and its log in one stderr line (with the
# log's last line, the program's one-line error, when the job's output went only to the log) and return the
# first failed job's exit status.
pool_end() {
  _pool_wait_below 1
  local quiet=$side_by_side name last
  side_by_side=false
  threads=$ncores
  refresh_flags
  if [ "${#_pool_failed[@]}" -gt 0 ]; then
    for name in "${_pool_failed[@]}"; do
      last=
      if [ "$quiet" = true ]; then last=$(tail -n 1 "$exp/logs/$name.log" 2>/dev/null || true); fi
      printf '%s: job %s failed: see %s%s\n' "${0##*/}" "$name" "$exp/logs/$name.log" "${last:+ ($last)}" >&2
    done
    return "${_pool_rc[${_pool_failed[0]}]}"
  fi
}
