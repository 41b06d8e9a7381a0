"""tools/convert_checkpoint.py (the old-layout converter, outside the package): bad inputs are one named line,
exit 2, as for the bin entry points; run as a script it finds the package. Its conversions are tested with the
hostile inputs in tests/reliability/test_checkpoints.py."""
import os
import subprocess
import sys

import pytest
import torch

from wespeaker_avkd.utils.errors import EXIT_NAMED_ERROR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("argv,expect", [
    (["--src", "{garbage}", "--dst", "{root}/conv.pt"], "{garbage}"),
    (["--models_dir", "{root}/missing_models"], "missing_models: no such directory"),
    ([], "give either --src/--dst or --models_dir"),
])
def test_bad_input_is_one_named_line(tmp_path, capsys, converter, argv, expect):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint\n")
    fill = {"garbage": str(garbage), "root": str(tmp_path)}
    assert converter.main([a.format(**fill) for a in argv]) == EXIT_NAMED_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("convert_checkpoint: ") and expect.format(**fill) in err[0]


def test_runs_as_a_script_and_converts(tmp_path):
    """python tools/convert_checkpoint.py --src OLD --dst NEW: the flat file holds encoder + projection.*."""
    from wespeaker_avkd import checkpoint as ckpt

    old = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.ones(2)}, "projection": {"weight": torch.zeros(3, 2)}}, old)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, os.path.join(REPO, "tools", "convert_checkpoint.py"), "--src", str(old),
                          "--dst", str(tmp_path / "new.pt")], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    state = ckpt.load_model_state(tmp_path / "new.pt")
    assert sorted(state) == ["projection.weight", "w"] and torch.equal(state["w"], torch.ones(2))
