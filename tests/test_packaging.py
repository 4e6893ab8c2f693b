"""A regular (non-editable) install must carry every subpackage and the world files.

Editable installs find folders that ``pyproject.toml`` forgot to list, so this builds the wheel the way
``pip install .`` would and checks its contents against the source tree.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"engine": "sendwise/engine", "models": "sendwise/models", "server": "sendwise/server", "cli": "sendwise/cli"}


def test_wheel_contains_every_subpackage_and_world_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("sendwise-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, package in LAYERS.items():
        for source in (ROOT / folder).rglob("*"):
            if source.suffix in {".py", ".toml", ".js", ".css", ".html"} and "__pycache__" not in source.parts:
                expected.add(f"{package}/{source.relative_to(ROOT / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"wheel lacks {len(missing)} files, e.g. {missing[:5]}; list their packages in pyproject.toml"
