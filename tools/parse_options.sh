#!/usr/bin/env bash
# Kaldi/WeSpeaker-style option parsing, meant to be sourced by a recipe AFTER it sets its defaults:
#
#   stage=1; stop_stage=8; config=
#   . tools/parse_options.sh
#
# turns `--stage 3`, `--stop_stage=5` and `--stop-stage 5` into assignments of the existing shell variables
# (dashes in names become underscores). An option without a same-named variable is an error, so a typo
# cannot pass silently. A variable whose default is true/false only accepts true or false.
# `--help` / `-h` prints $help_message (when set) and exits. Parsing stops at the first non-option word,
# which is left in "$@" for the caller.

__po_usage() {
  if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message"; fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      __po_usage; exit 0 ;;
    --*=*)
      __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --*)
      __po_name="$1"
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2; exit 1
      fi
      __po_value="$2"; shift 2 ;;
    *)
      break ;;
  esac
  __po_name="${__po_name#--}"
  __po_name="${__po_name//-/_}"
  case "$__po_name" in
    ''|[0-9]*|*[!A-Za-z0-9_]*)
      echo "$0: invalid option name --$__po_name" >&2; exit 1 ;;
  esac
  if ! declare -p "$__po_name" >/dev/null 2>&1; then
    echo "$0: unknown option --$__po_name (no default for it in $0)" >&2
    __po_usage >&2
    exit 1
  fi
  __po_old="${!__po_name}"
  if { [ "$__po_old" = true ] || [ "$__po_old" = false ]; } && \
     [ "$__po_value" != true ] && [ "$__po_value" != false ]; then
    echo "$0: option --$__po_name expects true or false, got '$__po_value'" >&2; exit 1
  fi
  printf -v "$__po_name" '%s' "$__po_value"
done
unset __po_name __po_value __po_old
true
