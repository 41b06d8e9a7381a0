"""Using a trained model outside the recipe: export to TorchScript/ONNX (export.py), embed files (embed.py)."""
