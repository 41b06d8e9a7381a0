"""Using a trained model: extraction of a data dir (extract.py) and its job-file runner (jobs.py), the teacher's
KD export (kd_export.py), the one embedding writer and job stamps (outputs.py), the GATE teacher's gate values
(gate.py), export to TorchScript/ONNX (export.py), embedding files outside the recipe (embed.py)."""
