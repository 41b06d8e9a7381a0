"""Where a report comes from: the commit of the repository that holds the package, whether its code (the
package and the recipe) differs from that commit, and the command line that made the report."""
from __future__ import annotations

import os
import subprocess
from typing import Any

CODE_DIRS = ("wespeaker_avkd", "egs")  # the dirty check covers the code that makes the numbers


def _git(root: str, *args: str) -> str | None:
    """stdout of `git -C root args` (stripped), or None when git is missing or fails."""
    try:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_provenance(command: str = "", package_dir: str | None = None) -> dict[str, Any]:
    """{commit, dirty {dir: bool}, git (a sentence), command}: commit = `git rev-parse HEAD` of the checkout
    holding the package (None, with the reason in `git`, when it is not a git checkout)."""
    package_dir = package_dir or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(package_dir)
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD") if top else None
    if not top or commit is None or os.path.realpath(top) != os.path.realpath(root):
        return {"commit": None, "dirty": None, "git": f"the package is not in a git checkout (at {root!r})",
                "command": command}
    dirty = {}
    for d in CODE_DIRS:
        status = _git(root, "status", "--porcelain", "--", d)
        dirty[d] = None if status is None else bool(status)
    state = ", ".join(f"{d}/ {'dirty' if v else 'clean' if v is False else 'unknown'}" for d, v in dirty.items())
    return {"commit": commit, "dirty": dirty, "git": f"commit {commit} ({state})", "command": command}
