"""Typed training and model configs, from the yaml to every consumer. In reading order: loading.py (yaml files
deep-merged, command-line overrides), kd_preset.py (KD weight presets), sections.py (the typed sections and the
one place their defaults are written), optimizers.py and components.py (model, head, optimizer and schedule
checked against their constructors, defaults filled in), train_config.py (TrainConfig and its parse),
serialize.py (config.yaml with every default, the typed diff a resumed run makes), wespeaker.py (the config in
WeSpeaker's names, from one key map), model_config.py (the model part of a saved config, for extraction)."""
