#!/usr/bin/env python3
"""Build llama.cpp's ``llama-server`` from the llama.cpp sources vendored in the sdist of
the installed llama-cpp-python, and cache the binary outside the checkout.

    python scripts/build_llama_server.py            # the installed llama-cpp-python's version
    python scripts/build_llama_server.py --version 0.3.36

The binary goes to ``$XDG_CACHE_HOME/logprob-eval/llama-server/<version>/llama-server``
(``~/.cache/...`` by default; ``LOGPROB_EVAL_CACHE`` overrides the root), the place the test
fixtures and ``logprob_eval.servers`` look for it. A cached binary that runs is reused: the
build (about 11 CPU-minutes) happens once per version and machine. The same version as the
Python binding means the same llama.cpp as ``llama-cpp-python`` and ``logprob-eval serve``.

Standard library only (it runs before or without the project's install). Needs a C++
compiler; cmake (and ninja, if present) come from PATH, else from ``pip install cmake
ninja`` into this interpreter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary to cache
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    # portable: a native build dies with an illegal instruction on some of these machines
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
]


def cache_root() -> Path:
    if os.environ.get("LOGPROB_EVAL_CACHE"):
        return Path(os.environ["LOGPROB_EVAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "logprob-eval"


def binary_path(version: str) -> Path:
    return cache_root() / "llama-server" / version / "llama-server"


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        sys.exit(
            "llama-cpp-python is not installed in this interpreter; install the project's "
            "[local] extra first, or pass --version X.Y.Z"
        )


def works(binary: Path) -> bool:
    if not binary.is_file():
        return False
    try:
        run = subprocess.run([str(binary), "--version"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def tools() -> tuple[str, str | None]:
    """(cmake, ninja or None), installing them with pip when cmake is not on PATH."""
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    if cmake is None:
        run([sys.executable, "-m", "pip", "install", "--quiet", "cmake", "ninja"])
        bindir = Path(sys.executable).parent
        cmake = shutil.which("cmake", path=str(bindir)) or shutil.which("cmake")
        ninja = ninja or shutil.which("ninja", path=str(bindir)) or shutil.which("ninja")
    if cmake is None:
        sys.exit("cmake not found, and `pip install cmake` did not provide it")
    return cmake, ninja


def build(version: str, jobs: int) -> Path:
    dest = binary_path(version)
    if works(dest):
        print(f"llama-server {version}: cached at {dest}")
        return dest
    cmake, ninja = tools()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-server-build-", dir=dest.parent) as tmp:
        work = Path(tmp)
        run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d", str(work),
            ]
        )  # fmt: skip
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"), None) or next(work.glob("*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = next(work.glob("*/vendor/llama.cpp"))
        gen = ["-G", "Ninja"] if ninja else []
        if ninja:
            gen.append(f"-DCMAKE_MAKE_PROGRAM={ninja}")
        run([cmake, "-S", str(src), "-B", str(work / "build"), *gen, *CMAKE_FLAGS])
        run([cmake, "--build", str(work / "build"), "--target", "llama-server", "-j", str(jobs)])
        built = work / "build" / "bin" / "llama-server"
        part = dest.with_name(dest.name + ".part")
        shutil.copy2(built, part)
        part.replace(dest)  # atomic: a half-copied binary is never found
    if not works(dest):
        sys.exit(f"the built {dest} does not run (`{dest} --version` failed)")
    print(f"llama-server {version}: built at {dest}")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", help="llama-cpp-python version (default: the installed one)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    ap.add_argument("--print-path", action="store_true", help="print where the binary goes")
    args = ap.parse_args()
    version = args.version or installed_version()
    if args.print_path:
        print(binary_path(version))
        return
    build(version, args.jobs)


if __name__ == "__main__":
    main()
