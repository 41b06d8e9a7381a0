"""Kaldi data dirs, features, face frames, datasets and the embedded toy audio-visual corpus."""
