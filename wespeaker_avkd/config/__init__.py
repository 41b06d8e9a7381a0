"""Typed training and model configs: the yaml schema, loading and overrides, KD presets, WeSpeaker names."""
