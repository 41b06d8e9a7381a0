# shellcheck shell=bash
# Environment of the v_kd recipe; sourced by run.sh from egs/voxceleb/v_kd.
# The package is normally installed (pip install -e .); putting the repository root first on PYTHONPATH
# also lets the recipe run from a plain checkout.
WESPEAKER_AVKD_ROOT="$(cd ../../.. && pwd)"
export WESPEAKER_AVKD_ROOT
export PYTHONPATH="${WESPEAKER_AVKD_ROOT}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export PYTHONIOENCODING=UTF-8
# Silence TensorFlow/oneDNN banners some environments print when tensorboard loads.
export TF_CPP_MIN_LOG_LEVEL=3
