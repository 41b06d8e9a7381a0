"""Build script: the wespeaker_avkd package and its compiled scorer `wespeaker_avkd._scorer`.

The compiler checks run only when the extension is built (build_ext), so `setup.py --version` or an sdist need
no compiler. Importing this file (tests/test_build.py does) defines the helpers without calling setup().
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CXX_NEEDED = ("wespeaker_avkd needs a C++17 compiler to build its scorer (g++ >= 7 or clang++ >= 5; on Debian/"
              "Ubuntu: apt-get install g++, on macOS: xcode-select --install; or point CXX and CC at one)")
# A C++17 program that needs only headers: compiles and links with g++, clang++, or gcc driving C++ sources.
CXX17_PROBE = "#include <string_view>\nint main() { constexpr std::string_view s{\"ok\"}; " \
              "if constexpr (s.size() == 2) return 0; else return 1; }\n"
OPENMP_PROBE = "#include <omp.h>\nint main(){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n"


def read_version() -> str:
    """The package version from wespeaker_avkd/version.py (read as text: importing the package is not needed)."""
    with open(os.path.join(ROOT, "wespeaker_avkd", "version.py"), encoding="utf-8") as f:
        match = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if not match:
        sys.exit("wespeaker_avkd/version.py must contain a line __version__ = \"X.Y.Z\"")
    return match.group(1)


def cxx_command() -> list:
    """The C++ compiler command: $CXX, else the one Python was configured with, else c++."""
    cmd = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "c++"
    return shlex.split(cmd)


def _compiles(cmd: list, source: str, flags: list) -> bool:
    """True when `cmd` compiles and links `source` (C++) with `flags`; False also when `cmd` does not exist."""
    if not cmd or not shutil.which(cmd[0]):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.cpp")
        with open(path, "w") as f:
            f.write(source)
        try:
            res = subprocess.run(cmd + [path, "-o", os.path.join(tmp, "probe")] + flags,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        except OSError:
            return False
        return res.returncode == 0


def require_cxx17(cmd: list) -> None:
    """Exit with CXX_NEEDED (naming `cmd`) unless `cmd` compiles and links a small C++17 program."""
    if _compiles(cmd, CXX17_PROBE, ["-std=c++17"]):
        return
    if not cmd or not shutil.which(cmd[0]):
        sys.exit(f"error: {CXX_NEEDED}. The compiler '{cmd[0] if cmd else ''}' is not found.")
    sys.exit(f"error: {CXX_NEEDED}. The compiler '{shlex.join(cmd)}' cannot compile a C++17 program.")


def openmp_flags(cmd: list) -> tuple:
    """(compile flags, link flags) for OpenMP with compiler `cmd`, or empty lists when the toolchain lacks it."""
    if os.environ.get("WESPEAKER_AVKD_NO_OPENMP") == "1":
        return [], []
    if _compiles(cmd, OPENMP_PROBE, ["-fopenmp"]):
        return ["-fopenmp"], ["-fopenmp"]
    print("wespeaker_avkd: the C++ compiler has no OpenMP; the scorer is built single-threaded", file=sys.stderr)
    return [], []


def main() -> None:
    """Declare the package and its extension; the compiler is checked when the extension is built."""
    try:
        from pybind11.setup_helpers import Pybind11Extension, build_ext
    except ImportError:  # pragma: no cover - pyproject.toml makes pip install pybind11 first
        sys.exit("pybind11 is required to build wespeaker_avkd: pip install pybind11 (pip does this itself "
                 "when installing from the source tree because pyproject.toml declares it)")

    class CheckedBuildExt(build_ext):
        """build_ext that checks for a C++17 compiler first, then adds OpenMP when the compiler has it."""

        def build_extensions(self) -> None:
            compilers = [getattr(self.compiler, "compiler_so", None), getattr(self.compiler, "compiler_cxx", None)]
            compilers = [list(c) for c in compilers if c] or [cxx_command()]
            for cmd in compilers:  # compiler_so compiles the sources, compiler_cxx links them
                require_cxx17(cmd)
            omp_compile, omp_link = openmp_flags(compilers[0])
            for ext in self.extensions:
                ext.extra_compile_args += omp_compile + (["-DWESPEAKER_AVKD_OPENMP"] if omp_compile else [])
                ext.extra_link_args += omp_link
            super().build_extensions()

    version = read_version()
    ext_modules = [
        Pybind11Extension(
            "wespeaker_avkd._scorer",
            sorted(glob.glob("csrc/*.cpp")),
            include_dirs=["csrc"],
            cxx_std=17,
            # The compiled module reports this version as _scorer.__version__ (stringified in bindings.cpp).
            define_macros=[("WESPEAKER_AVKD_VERSION", version)],
            # -O3 without -ffast-math or FMA contraction: EER/minDCF must be reproducible bit for bit (NaN checks,
            # Kaldi float32 rule, minDCF equal to compute_min_dcf.py's double arithmetic).
            extra_compile_args=["-O3", "-ffp-contract=off"],
            depends=sorted(glob.glob("csrc/*.h")),
        )
    ]
    # The triple CI installs and the test suite is validated on (torchvision and torchaudio each pin the torch
    # they were built for, so a range still resolves to a matching triple).
    tested_torch = ["torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1"]
    onnx = ["onnx>=1.16", "onnxscript>=0.4", "onnxruntime>=1.18"]
    voxceleb = ["av>=14"]
    setup(
        name="wespeaker_avkd",
        version=version,
        description="Knowledge distillation from audio-visual teachers to single-modality person verification "
                    "students, WeSpeaker-style, with a compiled trial scorer",
        packages=find_packages(include=["wespeaker_avkd", "wespeaker_avkd.*"]),
        package_data={"wespeaker_avkd": ["data/*.yaml"]},
        license="Apache-2.0",
        python_requires=">=3.10",
        install_requires=[
            # A compatible range keeps the torch a user already has; >= 2.3 for torch.amp.GradScaler.
            "torch>=2.3,<3",
            "torchvision>=0.18,<1",
            "torchaudio>=2.3,<3",
            "numpy>=1.24",
            "kaldiio>=2.18",
            "pyyaml>=6.0",
            "soundfile>=0.12",  # torchaudio.load needs torchcodec in 2.9; soundfile reads wav without it
            "scipy>=1.10",      # corpus synthesis filters, probit axes
            "pillow>=9.0",      # face frames
            "tqdm>=4.60",
            "matplotlib>=3.7",  # DET curves and report figures
            "tensorboard>=2.14",
        ],
        extras_require={
            # Independent references the tests cross-check against, the fuzzer, the C++ format check, and the
            # torch triple the suite is validated on (so `pip install -e ".[test]"` installs exactly that).
            "test": ["pytest>=7", "hypothesis>=6", "scikit-learn>=1.3", "kaldi-native-fbank>=1.18",
                     "clang-format>=23,<24", "ruff>=0.12"] + onnx + voxceleb + tested_torch,
            "tested": tested_torch,
            # ONNX export (torch.onnx's default exporter needs onnx + onnxscript) and running the file (onnxruntime).
            "onnx": onnx,
            # Real VoxCeleb: PyAV decodes m4a/AAC audio and mp4/H.264 face tracks in-process; its wheels carry
            # FFmpeg's libraries (no system ffmpeg binary is needed or called).
            "voxceleb": voxceleb,
        },
        entry_points={
            # Console commands for the main tools (each bin module's main(); python -m wespeaker_avkd.bin.X works too).
            "console_scripts": [
                "wespeaker-avkd-train = wespeaker_avkd.bin.train:main",
                "wespeaker-avkd-extract = wespeaker_avkd.bin.extract:main",
                "wespeaker-avkd-score = wespeaker_avkd.bin.score:main",
                "wespeaker-avkd-compute-metrics = wespeaker_avkd.bin.compute_metrics:main",
                "wespeaker-avkd-report = wespeaker_avkd.bin.report:main",
                "wespeaker-avkd-embed = wespeaker_avkd.bin.embed:main",
                "wespeaker-avkd-export = wespeaker_avkd.bin.export:main",
                "wespeaker-avkd-make-toy-corpus = wespeaker_avkd.bin.make_toy_corpus:main",
            ],
        },
        ext_modules=ext_modules,
        cmdclass={"build_ext": CheckedBuildExt},
        zip_safe=False,
    )


if __name__ == "__main__":
    main()
