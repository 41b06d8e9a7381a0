"""Build script: the wespeaker_avkd package and its compiled scorer `wespeaker_avkd._scorer`."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import find_packages, setup

try:
    from pybind11.setup_helpers import Pybind11Extension, build_ext
except ImportError:  # pragma: no cover - pyproject.toml makes pip install pybind11 first
    sys.exit("pybind11 is required to build wespeaker_avkd: pip install pybind11 (pip does this itself "
             "when installing from the source tree because pyproject.toml declares it)")


def _compiler_accepts(flags: list) -> bool:
    """True when the C++ compiler compiles and links a small OpenMP program with `flags`."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cxx:
        return False
    src = "#include <omp.h>\nint main(){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.cpp")
        with open(path, "w") as f:
            f.write(src)
        cmd = [cxx, path, "-o", os.path.join(tmp, "t")] + flags
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def _openmp_flags() -> tuple:
    """(compile flags, link flags) for OpenMP, or empty lists when the toolchain lacks it."""
    if os.environ.get("WESPEAKER_AVKD_NO_OPENMP") == "1":
        return [], []
    if _compiler_accepts(["-fopenmp"]):
        return ["-fopenmp"], ["-fopenmp"]
    print("wespeaker_avkd: the C++ compiler has no OpenMP; the scorer is built single-threaded", file=sys.stderr)
    return [], []


omp_compile, omp_link = _openmp_flags()
ext_modules = [
    Pybind11Extension(
        "wespeaker_avkd._scorer",
        sorted(glob.glob("csrc/*.cpp")),
        include_dirs=["csrc"],
        cxx_std=17,
        # -O3 without -ffast-math or FMA contraction: EER/minDCF must be reproducible bit for bit (NaN checks, Kaldi
        # float32 rule, minDCF equal to compute_min_dcf.py's double arithmetic).
        extra_compile_args=["-O3", "-ffp-contract=off"] + omp_compile + (["-DWESPEAKER_AVKD_OPENMP"] if omp_compile else []),
        extra_link_args=omp_link,
    )
]

setup(
    name="wespeaker_avkd",
    version="0.1.0",
    description="Knowledge distillation from audio-visual teachers to single-modality person verification "
                "students, WeSpeaker-style, with a compiled trial scorer",
    packages=find_packages(include=["wespeaker_avkd", "wespeaker_avkd.*"]),
    package_data={"wespeaker_avkd": ["data/*.yaml", "conf/*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        # torch, torchvision and torchaudio are released together; these three versions belong to each other.
        "torch==2.9.1",
        "torchvision==0.24.1",
        "torchaudio==2.9.1",
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
        # Independent references the tests cross-check against, and the fuzzer.
        "test": ["pytest>=7", "hypothesis>=6", "scikit-learn>=1.3", "kaldi-native-fbank>=1.18"],
    },
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    zip_safe=False,
)
