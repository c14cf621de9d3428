"""keyscope as a user installs it: the wheel built from the checkout, and a fresh virtual environment with that
wheel installed, for the tests that check what ships and that it works from there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The checkout."""


def _run(command: list[str], *, what: str, cwd: Path | None = None, timeout: float = 600) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed ({' '.join(command)}):\n{done.stdout}\n{done.stderr}")


def build_wheel(source: str | Path, out: Path) -> Path:
    """``pip wheel --no-deps`` of ``source`` (a folder, or any requirement pip takes, such as a git URL) into
    ``out``; the build backend comes from the package index, as for any pip install. Returns the wheel."""
    out.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
        what="building the wheel",
    )
    (path,) = out.glob("keyscope-*.whl")
    return path


def checkout_copy(work: Path) -> Path:
    """What a source distribution holds (pyproject.toml, README.md, src/), copied from the checkout without any
    earlier build's leftovers."""
    source = work / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    )
    return source


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment holding keyscope from a wheel: ``python`` runs in it, ``bin`` holds its
    commands; ``seconds`` is how long creating it and installing took."""

    root: Path
    python: Path
    seconds: float

    @property
    def bin(self) -> Path:
        return self.python.parent


def install_in_fresh_venv(wheel: Path, root: Path, extras: str = "") -> Installed:
    """A new virtual environment at ``root`` (no system packages) with ``wheel`` (and ``extras``, e.g.
    ``[postgres]``) installed by pip from the package index, pinned by the checkout's requirements.lock so
    that the environment is the one the tests run in. pip itself is not installed into it: the test
    environment's pip installs there (``pip --python``), which saves a minute's worth of set-up and changes
    nothing of what is installed."""
    start = time.monotonic()
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], what="creating the virtual environment")
    python = root / "bin" / "python"
    _run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-compile",
            "--disable-pip-version-check", "-c", str(ROOT / "requirements.lock"), f"{wheel}{extras}",
        ],
        what="installing the wheel",
    )  # fmt: skip
    return Installed(root, python, time.monotonic() - start)
