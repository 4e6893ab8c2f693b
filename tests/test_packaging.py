"""A regular (non-editable) install must carry every subpackage and the world files.

Editable installs find folders that ``pyproject.toml`` forgot to list, so this builds the wheel the way
``pip install .`` would and checks its contents against the source tree. Both builds, regular and
editable, must do so without a setuptools warning (pip prints every one of them at install time).
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"engine": "sendwise/engine", "models": "sendwise/models", "server": "sendwise/server", "cli": "sendwise/cli"}


def test_wheel_contains_every_subpackage_and_world_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stderr
    (wheel,) = tmp_path.glob("sendwise-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in LAYERS.items():
        for source in (ROOT / folder).rglob("*"):
            if source.suffix in {".py", ".toml", ".js", ".css", ".html"} and "__pycache__" not in source.parts:
                expected.add(f"{package}/{source.relative_to(ROOT / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"wheel lacks {len(missing)} files, e.g. {missing[:5]}; list their packages in pyproject.toml"


def test_the_editable_build_gives_no_setuptools_warning(tmp_path: Path) -> None:
    """The backend of ``pip install -e .``, with every warning pip would print turned into an error."""
    code = "import sys, sendwise_build; print(sendwise_build.build_editable(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code, str(tmp_path)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tools")}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / done.stdout.strip().splitlines()[-1]).is_file()
