"""The labeling page an annotator sees, rendered by headless Chromium against a real Label Studio."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk import LabelStudio

from annotation import client, labeling, server, workflow
from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace
from tests.annotation_fixtures import (
    LabelStudioServer,
    configure,
    set_clip_outcomes,
)
from tests.dataset_fixtures import populate
from tests.test_cli import widespec

pytestmark = pytest.mark.slow  # a real Label Studio server and headless Chromium


def _logged_in(playwright: Any, url: str, login: server.Login) -> tuple[Any, Any]:
    """Headless Chromium and a page where `login` has signed in to Label Studio."""
    browser = playwright.chromium.launch(
        executable_path=shutil.which("chromium"),
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1800})
    page.goto(f"{url}/user/login/")
    page.fill("input[name=email]", login.email)
    page.fill("input[name=password]", login.password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda current: "/user/login" not in current)
    return browser, page


def test_labeling_page_shows_both_images_the_prompt_and_the_questions(
    ls_server: LabelStudioServer,
    team_ws: Workspace,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    populate(team_ws, 1)
    configure(team_ws, gold_rate=0.0)
    pushed = workflow.push(team_ws, 1)
    ls = LabelStudio(base_url=ls_server.url, api_key=ls_server.token)
    ((_pair, task_id),) = client.task_pairs(ls, pushed.project_id).items()
    variant = next(iter(team_ws.store.iter("variant")))
    anti_prompt, base_prompt = variant["text"], next(iter(team_ws.store.iter("base_prompt")))["text"]
    names = labeling.dimension_names(team_ws)
    annotator = ls_server.annotators[0]
    with sync_playwright() as p:
        browser, page = _logged_in(p, ls_server.url, annotator)
        page.goto(f"{ls_server.url}/projects/{pushed.project_id}/data?task={task_id}")
        page.get_by_text(anti_prompt).first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "labeling.png"))
        # Served from the server's uploads (a team server: push uploaded them), or as blob URLs of those.
        page.wait_for_function(
            "() => [...document.images].filter(i => (i.src.includes('/data/upload/') || i.src.startsWith('blob:'))"
            " && i.naturalWidth > 0).length >= 2",
            timeout=60_000,
        )
        for question in ("Which image follows the prompt better?", "still recognisable", "Flags"):
            assert page.get_by_text(question).first.is_visible()
        assert page.get_by_text(base_prompt, exact=True).first.is_visible()
        for option in ("Tie", "Unsafe", "Broken image", *(names.get(d, d) for d in variant["dimensions"])):
            assert page.locator("label").filter(has_text=option).first.is_visible(), option
        browser.close()


# The task's images as the labeling panel shows them (A then B; Label Studio loads them as blob URLs), and the
# SHA-256 of the bytes each one shows.
IMAGE_HASHES = """async () => {
  const hex = b => [...new Uint8Array(b)].map(x => x.toString(16).padStart(2, '0')).join('');
  const shown = [...document.querySelectorAll('.lsf-main-view img')].filter(i => i.src.startsWith('blob:'));
  return Promise.all(shown.map(async i => hex(await crypto.subtle.digest('SHA-256', await (await fetch(i.src)).arrayBuffer()))));
}"""


def _shown_images(page: Any, expected: set[str], seconds: float = 60) -> list[str]:
    """The hashes of the two images the panel shows, once they are the task's (the panel may show another first)."""
    deadline = time.monotonic() + seconds
    shown: list[str] = []
    while time.monotonic() < deadline:
        shown = page.evaluate(IMAGE_HASHES)
        if len(shown) == 2 and set(shown) == expected:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"the labeling panel shows {shown}, not the task's images {sorted(expected)}")


def _wait_for_answer(ls: LabelStudio, task_id: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ls.tasks.get(id=task_id).annotations:  # its total_annotations counter lags
            return
        time.sleep(0.5)
    raise AssertionError(f"task {task_id}: no annotation stored after {seconds} s")


def test_an_annotator_answers_with_the_keyboard_alone_and_the_answer_maps_back(
    ls_server: LabelStudioServer,
    team_ws: Workspace,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    set_clip_outcomes(team_ws, dict.fromkeys(populate(team_ws, 8), "accept"))
    configure(team_ws, gold_rate=0.0, pairs_per_round=8, rejected_rate=0.0)
    pushed = workflow.push(team_ws, 1)
    plan = {pair: order for pair, _g, order in team_ws.store.state_get("annotation:round:1")["tasks"]}  # type: ignore[index]
    # One task showing the anti image as A and one showing it as B (the seeded order has both here).
    first = next(p for p, order in sorted(plan.items()) if order == "anti_first")
    second = next(p for p, order in sorted(plan.items()) if order == "base_first")
    wanted = {first: "anti", second: "base"}
    pairs = {p.id: p for p in iter_pairs(team_ws.store)}
    ls = LabelStudio(base_url=ls_server.url, api_key=ls_server.token)
    tasks = client.task_pairs(ls, pushed.project_id)
    annotator = ls_server.annotators[1]
    with sync_playwright() as p:
        browser, page = _logged_in(p, ls_server.url, annotator)
        for pair_id, choice in wanted.items():
            page.goto(f"{ls_server.url}/projects/{pushed.project_id}/data?task={tasks[pair_id]}")
            page.get_by_text(pairs[pair_id].variant["text"]).first.wait_for(timeout=60_000)
            # Which key picks the image the annotator means: read off the page (the bytes shown as A and as B).
            pair = pairs[pair_id]
            shown = _shown_images(page, {pair.anti_render["image_sha256"], pair.base_render["image_sha256"]})
            render = pair.anti_render if choice == "anti" else pair.base_render
            position = shown.index(render["image_sha256"])
            page.keyboard.press(labeling.HOTKEYS["choice"]["ab"[position]])
            page.keyboard.press(labeling.HOTKEYS["subject_kept"]["yes"])
            page.screenshot(path=str(tmp_path / f"keyboard-{choice}.png"))
            page.wait_for_function("() => document.querySelectorAll('.lsf-main-view input:checked').length >= 2")
            page.keyboard.press("Control+Enter")
            _wait_for_answer(ls, tasks[pair_id])
        browser.close()

    pulled = widespec("-w", str(team_ws.root), "annotate", "pull", "--round", "1", cwd=team_ws.root)
    assert pulled.returncode == 0, pulled.stderr
    stored = {a["subject_id"]: a for a in team_ws.store.iter("annotation", round=1)}
    assert set(stored) == set(wanted)
    for pair_id, choice in wanted.items():
        answer = stored[pair_id]
        assert (answer["annotator"], answer["choice"], answer["subject_kept"]) == (annotator.email, choice, True)
        assert answer["ab_order"] == plan[pair_id]
