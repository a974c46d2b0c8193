"""The HTML report: numbers from the store, self-contained, and rendering in a real browser."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from curation.app.report import write_report
from curation.app.report_data import gather
from curation.core.scorer import configured_scorer
from curation.core.workspace import Workspace
from tests.dataset_fixtures import SCORER, populate


def test_report_numbers_come_from_the_records(workspace: Workspace) -> None:
    populate(workspace, 9)
    data = gather(workspace.store, configured_scorer(workspace.store, workspace.settings.scorer))
    funnel = {stage: total for stage, total, _ in data.funnel}
    assert funnel["current pairs"] == 9 and funnel["renders"] == 18 and funnel["human verdicts"] == 5
    # Every current pair's fate, as the release's rows mode (accepted) places it: humans first, then CLIP.
    fates = {stage: by for stage, _total, by in data.funnel}["fates (export.rows = accepted)"]
    humans = {v["subject_id"] for v in workspace.store.iter("verdict")}
    clip = {d["subject_id"]: d["outcome"] for d in workspace.store.iter("decision", stage="clip")}
    assert fates.get("accepted by human", 0) == len(humans) and sum(fates.values()) == 9
    assert fates.get("accepted by clip", 0) == sum(1 for p, o in clip.items() if o == "accept" and p not in humans)
    decided = sum(sum(c.values()) for c in data.acceptance_by_intensity.values())
    assert decided == 9
    accepted = sum(c["accept"] for c in data.acceptance_by_intensity.values())
    assert accepted == sum(1 for o in data.decisions.values() if o == "accept")
    assert sum(len(v) for v in data.metrics_by_outcome["fidelity"].values()) == 9
    assert data.rounds[0]["pairs"] == 5 and data.rounds[0]["mean_winning_share"] == pytest.approx(2 / 3)
    assert data.rounds[0]["alpha"]["choice"] is None  # these verdicts were resolved before alpha was kept
    assert data.random_weight_models == [SCORER, "builtin:tiny-sd"]


def test_empty_workspace_report_says_what_to_run(workspace: Workspace) -> None:
    text = write_report(workspace).read_text()
    assert "widespec generate" in text and "widespec score" in text and "random weights" not in text


@pytest.mark.slow
def test_report_is_self_contained_and_warns_about_random_weights(workspace: Workspace) -> None:
    populate(workspace, 4)
    text = write_report(workspace).read_text()
    assert 'id="random-weights"' in text or "id=random-weights" in text
    assert 'src="http' not in text and "<script" not in text
    first_image = text.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(first_image).startswith(b"\x89PNG")


@pytest.mark.slow
def test_report_renders_plots_and_gallery_in_chromium(workspace: Workspace, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    populate(workspace, 6)
    path = write_report(workspace)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(path.as_uri())
        plots = page.locator("#plots img.plot")
        assert plots.count() == 3
        widths = page.eval_on_selector_all("#plots img.plot", "els => els.map(e => e.naturalWidth)")
        assert all(w > 100 for w in widths)
        assert page.locator("#gallery figure.pair").count() == 6
        gallery_widths = page.eval_on_selector_all("#gallery img", "els => els.map(e => e.naturalWidth)")
        assert len(gallery_widths) == 12 and all(w == 32 for w in gallery_widths)
        assert "a quiet street scene number" in page.locator("#gallery").inner_text()
        assert page.locator("#funnel tr").count() == 10  # the header and nine stages, fates included
        page.screenshot(path="/tmp/report-shot.png", full_page=True)
        browser.close()


@pytest.mark.slow
def test_report_gives_each_rounds_alpha_with_its_interval(workspace: Workspace) -> None:
    populate(workspace, 4)
    figures = {"alpha": {"choice": 0.4567, "qualities": None}, "alpha_interval": {"choice": [0.3012, 0.6034]}}
    verdicts = [{**v, **figures} for v in workspace.store.iter("verdict", round=1)]
    workspace.store.put("verdict", verdicts, on_conflict="replace")
    text = write_report(workspace).read_text()
    rounds = text[text.index("<table id=rounds>") :]
    rounds = rounds[: rounds.index("</table>")]
    assert "<th>alpha: choice</th>" in rounds and "0.46 [0.30, 0.60]" in rounds
    assert "winning-vote share" in rounds and "mean agreement" not in text
