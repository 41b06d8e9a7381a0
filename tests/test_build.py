"""The build: one version everywhere, a clear message without a C++ compiler, csrc/ formatted and in small
files with short functions, no machine path in csrc/."""
import glob
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

import wespeaker_avkd
from wespeaker_avkd import _scorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = sorted(glob.glob(os.path.join(ROOT, "csrc", "*")))
MAX_FILE_LINES = 260  # "about 250"
MAX_FUNCTION_LINES = 60

# Loads setup.py as a module (its setup() runs only as __main__), then runs the given code against it.
LOAD_SETUP = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('wsavkd_setup', {path!r}); "
              "s = importlib.util.module_from_spec(spec); spec.loader.exec_module(s); ")


def run_setup_code(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` with setup.py loaded as `s`, in a fresh interpreter."""
    src = LOAD_SETUP.format(path=os.path.join(ROOT, "setup.py")) + code
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **(env or {})), timeout=300)


def test_one_version_everywhere():
    with open(os.path.join(ROOT, "wespeaker_avkd", "version.py")) as f:
        written = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M).group(1)
    assert wespeaker_avkd.__version__ == written
    assert _scorer.__version__ == written, "the compiled scorer is stale: rebuild (pip install -e .)"
    r = run_setup_code("print(s.read_version())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == written
    try:
        installed = importlib.metadata.version("wespeaker_avkd")
    except importlib.metadata.PackageNotFoundError:  # built in place, not installed
        return
    assert installed == written, "the installed metadata is stale: reinstall (pip install -e .)"


def test_missing_compiler_is_named_before_openmp():
    missing = "/nonexistent/bin/g++"
    r = run_setup_code("s.require_cxx17(s.cxx_command())", env={"CXX": missing})
    assert r.returncode != 0
    assert "needs a C++17 compiler" in r.stderr and "g++ >= 7" in r.stderr
    assert f"'{missing}' is not found" in r.stderr
    assert "OpenMP" not in r.stderr


def test_compiler_that_cannot_compile_cxx17_is_named(tmp_path):
    fake = tmp_path / "fake-cxx"
    fake.write_text("#!/bin/sh\necho 'fake compiler' >&2\nexit 1\n")
    fake.chmod(0o755)
    r = run_setup_code("s.require_cxx17(s.cxx_command())", env={"CXX": str(fake)})
    assert r.returncode != 0
    assert "cannot compile a C++17 program" in r.stderr and "needs a C++17 compiler" in r.stderr


def test_working_compiler_passes_the_check():
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler on this machine")
    r = run_setup_code("s.require_cxx17(s.cxx_command()); print('ok')", env={"CXX": cxx})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


CLANG_FORMAT_MAJOR = 23  # the version the test extra installs; other majors may format differently


def clang_format_binary() -> str | None:
    """The clang-format of the `clang-format` wheel (test extra), else one on PATH."""
    try:
        import clang_format

        path = os.path.join(os.path.dirname(clang_format.__file__), "data", "bin", "clang-format")
        if os.path.exists(path):
            return path
    except ImportError:
        pass
    return shutil.which("clang-format")


def test_clang_format():
    exe = clang_format_binary()
    if exe is None:
        pytest.skip("clang-format is not installed (pip install -e '.[test]' installs it)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    major = re.search(r"version (\d+)", version)
    if not major or int(major.group(1)) != CLANG_FORMAT_MAJOR:
        pytest.skip(f"csrc/ is formatted with clang-format {CLANG_FORMAT_MAJOR}, found: {version.strip()}")
    r = subprocess.run([exe, "--dry-run", "--Werror"] + CSRC, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"csrc/ is not formatted (clang-format -i csrc/*):\n{r.stderr[-3000:]}"


def test_ruff_lint():
    """The Python lint configured in pyproject.toml ([tool.ruff]) passes on the whole repository."""
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, f"ruff check . found problems:\n{r.stdout[-3000:]}{r.stderr[-1000:]}"


def test_no_absolute_machine_path_in_csrc():
    pattern = re.compile(r"(?<![\w.])/(work|home|root|tmp|Users|mnt|data|opt|srv)/")
    hits = [f"{os.path.relpath(p, ROOT)}:{i}: {line.strip()}" for p in CSRC
            for i, line in enumerate(open(p), 1) if pattern.search(line)]
    assert not hits, "\n".join(hits)


def strip_comments_and_strings(text: str) -> str:
    """Comments, preprocessor lines and string/char literals blanked (newlines kept), so braces can be counted."""
    pat = re.compile(r'//[^\n]*|/\*.*?\*/|^[ \t]*#[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S | re.M)
    return pat.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


SCOPE = re.compile(r"^(template\s*<[^{]*>\s*)?(namespace|class|struct|enum|union)\b")
CONTROL = re.compile(r"^(if|for|while|switch|else|do|try|catch)\b")


def function_lengths(text: str) -> list[tuple[int, int, str]]:
    """(lines, first line, signature) of each function body opened at namespace or class scope."""
    code = strip_comments_and_strings(text)
    out, stack, head_start, line = [], [], 0, 1  # stack: (kind, first line)
    for i, ch in enumerate(code):
        if ch == "\n":
            line += 1
        elif ch == ";" and (not stack or stack[-1][0] == "scope"):
            head_start = i + 1
        elif ch == "{":
            head = code[head_start:i].strip()
            outer = not stack or stack[-1][0] == "scope"
            if outer and SCOPE.match(head) and "(" not in head:
                kind = "scope"
            elif outer and ")" in head and not CONTROL.match(head) and "=" not in head.split("(")[0]:
                kind = "function"
            else:
                kind = "block"
            stack.append((kind, line - head.count("\n"), " ".join(head.split())[:80]))
            head_start = i + 1
        elif ch == "}":
            kind, first, head = stack.pop()
            if kind == "function":
                out.append((line - first + 1, first, head))
            if not stack or stack[-1][0] == "scope":
                head_start = i + 1
    return out


def test_function_length_finder_sees_functions():
    text = "namespace a {\nstruct S {\n  int f() {\n    if (x) {\n      y();\n    }\n    return 1;\n  }\n};\n" \
           "void g(int x,\n       int y) {\n  z();\n}\n}  // namespace a\n"
    assert [(n, first) for n, first, _ in function_lengths(text)] == [(6, 3), (4, 10)]


def test_csrc_files_and_functions_are_short():
    long_files = [f"{os.path.basename(p)}: {n} lines" for p in CSRC
                  if (n := sum(1 for _ in open(p))) > MAX_FILE_LINES]
    assert not long_files, long_files
    long_functions = [f"{os.path.basename(p)}:{first}: {n} lines: {head}" for p in CSRC
                      for n, first, head in function_lengths(open(p).read()) if n > MAX_FUNCTION_LINES]
    assert not long_functions, long_functions
    assert sum(len(function_lengths(open(p).read())) for p in CSRC) > 50  # the finder does see the functions
