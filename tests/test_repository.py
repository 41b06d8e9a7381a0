"""The repository explains itself: no machine paths, no notes outside it, every cited docs/ file present.

Scans every tracked file (git ls-files; a plain walk of the source tree when git is not there). The patterns are
assembled so that this file does not match them itself, and this file is scanned like any other.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# Absolute paths of a development machine: the work, farm or root folder right under the file-system root, or a
# home directory (home/<user> on Linux, Users/<user> on macOS); a folder named "work" inside a relative path is
# fine.
_SEP = "/"
MACHINE_PATH = re.compile(r"(?<![\w.~-])" + _SEP + r"(?:wo" r"rk|fa" r"rm|ro" r"ot)" + _SEP
                          + r"|(?<![\w.~-])" + _SEP + r"(?:ho" r"me|Us" r"ers)" + _SEP + r"[A-Za-z0-9_.-]+" + _SEP)
# Notes that live outside the repository: the team's shelf and its notes.
OUTSIDE_NOTE = re.compile(r"\.\./sha" r"red\b|\bsha" r"red/refer" r"ence\b|\brefer" r"ence/[\w.-]+\.md\b"
                          r"|\bkd_and_fu" r"sion\b")
DOCS_CITATION = re.compile(r"\bdocs/([\w.-]+\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
# Walked when git is not available (an unpacked archive): the source tree without the recipe's outputs, build
# folders and caches.
_TOP_SKIP = {".git", "build", "dist", "exp", "data", "fbank", ".mbrola"}
_ANY_SKIP = {"__pycache__", ".pytest_cache"}


def in_git_work_tree() -> bool:
    """True when the file list can come from git's index."""
    return bool(shutil.which("git")) and (REPO / ".git").exists()


def walk_files() -> list[Path]:
    """Every file of the source tree, without outputs, build folders and caches."""
    files = []
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO).parts
        if (path.is_file() and rel[0] not in _TOP_SKIP
                and not any(p in _ANY_SKIP or p.endswith(".egg-info") for p in rel[:-1])):
            files.append(path)
    return files


def tracked_files() -> list[Path]:
    """Files of the repository: git's index when this is a git work tree, else walk_files()."""
    if not in_git_work_tree():
        return walk_files()
    out = subprocess.run([shutil.which("git"), "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in out.decode("utf-8").split("\0") if name and (REPO / name).is_file()]


def read_text(path: Path) -> str | None:
    """The file as text, or None for binary files."""
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def find(pattern: re.Pattern, text: str) -> list[tuple[int, str]]:
    """(line number, matched text) of every match."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(0)) for m in pattern.finditer(text)]


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """Relative path -> text of every tracked text file."""
    out = {}
    for path in tracked_files():
        text = read_text(path)
        if text is not None:
            out[path.relative_to(REPO).as_posix()] = text
    assert out, f"no files found under {REPO}"
    return out


def test_patterns_catch_what_they_are_for():
    machine = ["see " + _SEP + "work" + _SEP + "shared", "cd " + _SEP + "root" + _SEP + "x",
               _SEP + "home" + _SEP + "alice" + _SEP + "vox", "at " + _SEP + "farm" + _SEP + "a",
               _SEP + "Users" + _SEP + "bob" + _SEP + "x"]
    for text in machine:
        assert find(MACHINE_PATH, text), text
    for text in ["egs/voxceleb/v_kd/work/x", "data_root/x", "https://example.org/homework/",
                 "~" + _SEP + "work" + _SEP + "x", "/usr/share/common-licenses"]:
        assert not find(MACHINE_PATH, text), text
    outside = [".." + _SEP + "shared" + _SEP + "DESIGN.md", "see refer" "ence/metrics.md",
               "shared" + _SEP + "reference", "kd_and_" "fusion"]
    for text in outside:
        assert find(OUTSIDE_NOTE, text), text
    for text in ["tests/scoring/references.py", "the reference value", "docs/metrics.md"]:
        assert not find(OUTSIDE_NOTE, text), text
    assert find(DOCS_CITATION, "see docs/metrics.md.") == [(1, "docs/metrics.md")]


def test_the_walk_without_git_finds_the_sources_and_skips_outputs():
    walked = {p.relative_to(REPO).as_posix() for p in walk_files()}
    assert {"wespeaker_avkd/data/kaldi_dir.py", "docs/design.md", "tests/test_repository.py"} <= walked
    assert not any(name.split("/")[0] in _TOP_SKIP or "__pycache__" in name for name in walked)


def test_no_absolute_path_of_a_development_machine(texts):
    hits = [f"{name}:{line}: {match}" for name, text in sorted(texts.items())
            for line, match in find(MACHINE_PATH, text)]
    assert not hits, "machine paths in the repository (write a relative path or describe it):\n" + "\n".join(hits)


def test_no_citation_of_notes_outside_the_repository(texts):
    hits = [f"{name}:{line}: {match}" for name, text in sorted(texts.items())
            for line, match in find(OUTSIDE_NOTE, text)]
    assert not hits, "citations of notes a clone does not contain (cite docs/<file>.md):\n" + "\n".join(hits)


def test_every_cited_docs_file_exists_and_is_part_of_the_repository(texts):
    tracked = set(texts)
    missing = []
    for name, text in sorted(texts.items()):
        for line, match in find(DOCS_CITATION, text):
            cited = "docs/" + DOCS_CITATION.match(match).group(1)
            if cited not in tracked:
                missing.append(f"{name}:{line}: {cited}")
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_links_between_docs_resolve(texts):
    broken = []
    for name, text in sorted(texts.items()):
        if not name.startswith("docs/") or not name.endswith(".md"):
            continue
        for line, match in find(MARKDOWN_LINK, text):
            target = MARKDOWN_LINK.match(match).group(1)
            if re.match(r"^[a-z]+:", target):
                continue  # an URL
            if not (DOCS / target).resolve().exists():
                broken.append(f"{name}:{line}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_documents_the_design_promises_exist(texts):
    for doc in ("README", "design", "metrics", "kd_losses", "statistics", "corpus", "wespeaker"):
        assert f"docs/{doc}.md" in texts, f"docs/{doc}.md is not in the repository"
    assert "LICENSE" in texts and "Apache License" in texts["LICENSE"] and "Version 2.0" in texts["LICENSE"]
