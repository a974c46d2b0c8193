"""The wheel carries every module, the schemas and the bundled data, so an installed widespec works anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the wheel in a subprocess

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_every_module_schema_and_data_file(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("widespec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(ROOT)) for pkg in ("curation", "annotation", "exports") for p in (ROOT / pkg).rglob("*.py")
    }
    expected |= {f"curation/schemas/{p.name}" for p in (ROOT / "schemas").glob("*.schema.json")}
    expected |= {str(p.relative_to(ROOT)) for p in (ROOT / "curation" / "data").iterdir() if p.is_file()}
    missing = sorted(expected - names)
    assert not missing, f"missing from the wheel (add the package to pyproject.toml): {missing}"
