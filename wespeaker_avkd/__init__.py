"""wespeaker_avkd: audio-visual -> single-modality knowledge distillation for person verification."""
__version__ = "0.1.0"
