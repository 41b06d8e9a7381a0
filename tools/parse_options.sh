#!/usr/bin/env bash
# Kaldi/WeSpeaker-style option parsing, meant to be sourced by a recipe AFTER it sets its defaults and lists
# the names it documents:
#
#   stage=1; stop_stage=8; config=
#   options=(stage stop_stage config)
#   . tools/parse_options.sh
#
# turns `--stage 3`, `--stop_stage=5` and `--stop-stage 5` into assignments of those shell variables (dashes
# in names become underscores). Only names listed in `options` are accepted: any other shell variable (PATH,
# IFS, the recipe's internals) cannot be set from the command line, and a typo is an error. A variable whose
# default is true/false only accepts true or false. Values are assigned verbatim with `printf -v` (never
# evaluated); checking their type is the caller's job. `--help` / `-h` prints $help_message (when set) and
# exits. Parsing stops at the first non-option word, which is left in "$@" for the caller. A bad option is one
# stderr line '<script>: message' and exit status 2, as a named error of the package's entry points.

__po_usage() {
  if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message"; fi
}

# shellcheck disable=SC2154  # the caller defines options
if [[ "$(declare -p options 2>/dev/null)" != "declare -a"* ]]; then
  echo "${0##*/}: parse_options.sh needs an array 'options' naming the accepted options" >&2
  exit 2
fi

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      __po_usage; exit 0 ;;
    --*=*)
      __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --*)
      __po_name="$1"
      if [ $# -lt 2 ]; then
        echo "${0##*/}: option $1 needs a value" >&2; exit 2
      fi
      __po_value="$2"; shift 2 ;;
    *)
      break ;;
  esac
  __po_name="${__po_name#--}"
  __po_name="${__po_name//-/_}"
  __po_known=false
  for __po_opt in "${options[@]}"; do
    if [ "$__po_opt" = "$__po_name" ]; then __po_known=true; break; fi
  done
  if [ "$__po_known" != true ]; then
    printf '%s: unknown option --%s (see --help)\n' "${0##*/}" "$__po_name" >&2
    exit 2
  fi
  __po_old="${!__po_name}"
  if { [ "$__po_old" = true ] || [ "$__po_old" = false ]; } && \
     [ "$__po_value" != true ] && [ "$__po_value" != false ]; then
    printf '%s: option --%s expects true or false, got %q\n' "${0##*/}" "$__po_name" "$__po_value" >&2; exit 2
  fi
  printf -v "$__po_name" '%s' "$__po_value"
done
unset __po_name __po_value __po_old __po_opt __po_known
true
