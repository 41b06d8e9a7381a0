"""Training library: config loading, optimizers and LR schedules, checkpoints, distribution, the trainer loop,
embedding extraction and the teacher's KD export."""
