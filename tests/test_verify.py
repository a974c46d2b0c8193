"""`widespec verify` finds every kind of damage and only damage."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from curation.app.cli import app
from curation.core.workspace import MOVES_KEY, Workspace
from tests.test_image_integrity import flip_a_pixel, truncate


def cli(root: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["-w", str(root), "-q", *args])


def verified(root: Path) -> dict[str, Any]:
    result = cli(root, "verify", "--json")
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == (0 if report["clean"] else 1), result.output
    return report


def problems(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["check"], f["subject"], f["status"]) for f in report["findings"] if f["status"] != "ok"}


def test_verify_passes_a_sound_workspace_and_prints_one_table(released: Workspace) -> None:
    report = verified(released.root)
    assert report["clean"] and not problems(report)
    assert {(f["check"], f["subject"]) for f in report["findings"]} == {
        ("database", "widespec.db"),
        ("images", "images/"),
        ("release", "v1.0.0"),
    }
    table = CliRunner().invoke(app, ["-w", str(released.root), "verify"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "integrity_check ok" in table.stdout and "12 files checked" in table.stdout


def test_verify_names_each_damaged_or_missing_file_and_exits_1(released: Workspace) -> None:
    pairs = list(released.store.iter("render"))
    cut, flipped, lost = (r["image_sha256"] for r in pairs[:3])
    truncate(released.images.path_for(cut))
    flip_a_pixel(released.images.path_for(flipped))
    released.images.path_for(lost).unlink()
    card = released.exports_dir / "v1.0.0" / "README.md"
    card.chmod(card.stat().st_mode | stat.S_IWUSR)
    card.write_text(card.read_text() + "edited\n")
    (released.exports_dir / "v9.9.9").mkdir()  # a folder no release holds
    (released.exports_dir / ".tmp-v2.0.0-123").mkdir()  # an export at work: not damage
    (released.images.root / cut[:2] / f".{cut}.png.x1y2.tmp").write_bytes(b"x")  # an image being written: not damage
    report = verified(released.root)
    assert not report["clean"]
    assert problems(report) == {
        ("images", "images/", "damaged"),
        ("image", f"images/{cut[:2]}/{cut}.png", "damaged"),
        ("image", f"images/{flipped[:2]}/{flipped}.png", "damaged"),
        ("image", f"images/{lost[:2]}/{lost}.png", "missing"),
        ("release", "v1.0.0", "damaged"),
        ("release", "v9.9.9", "damaged"),
    }
    details = {f["subject"]: f["detail"] for f in report["findings"]}
    assert (
        details["v1.0.0"].startswith("README.md was changed") and "names it" in details[f"images/{lost[:2]}/{lost}.png"]
    )
    assert details["images/"] == "11 files checked, 2 damaged, 1 missing"
    plain = CliRunner().invoke(app, ["-w", str(released.root), "verify"], env={"COLUMNS": "200"})
    assert plain.exit_code == 1 and "damaged: 5 problem(s)" in plain.stderr


def test_verify_reports_a_damaged_database_and_still_checks_the_images(released: Workspace) -> None:
    released.close()
    database = released.root / "widespec.db"
    with database.open("r+b") as handle:
        handle.write(b"this is no longer an SQLite database header")
    report = verified(released.root)
    assert problems(report) == {("database", "widespec.db", "damaged")}
    assert "12 files checked" in next(f["detail"] for f in report["findings"] if f["check"] == "images")


def test_a_release_whose_rename_is_owed_verifies_where_it_waits(released: Workspace) -> None:
    final = released.exports_dir / "v1.0.0"
    waiting = released.exports_dir / ".tmp-v1.0.0-4242"
    final.rename(waiting)  # as a kill between the release's commit and its rename leaves it
    released.store.state_put(MOVES_KEY, [[str(waiting), str(final)]])
    released.close()
    assert verified(released.root)["clean"] and waiting.is_dir()  # checked where it is, and left there
