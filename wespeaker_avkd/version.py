"""The package version: the one place it is written (setup.py reads it, the compiled scorer is built with it)."""
__version__ = "0.1.0"
