"""The labeling page an annotator sees, rendered by headless Chromium against a real Label Studio."""

from __future__ import annotations

import shutil
from pathlib import Path

from label_studio_sdk import LabelStudio

from annotation import client, labeling, workflow
from curation.core.workspace import Workspace
from tests.annotation_fixtures import LabelStudioServer, configure, ls_server, team_ws  # noqa: F401
from tests.dataset_fixtures import populate


def test_labeling_page_shows_both_images_the_prompt_and_the_questions(
    ls_server: LabelStudioServer,  # noqa: F811
    team_ws: Workspace,  # noqa: F811
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
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.goto(f"{ls_server.url}/user/login/")
        page.fill("input[name=email]", annotator.email)
        page.fill("input[name=password]", annotator.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url)
        page.goto(f"{ls_server.url}/projects/{pushed.project_id}/data?task={task_id}")
        page.get_by_text(anti_prompt).first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "labeling.png"))
        page.wait_for_function(
            "() => [...document.images].filter(i => i.src.includes('/data/local-files/') && i.naturalWidth > 0)"
            ".length >= 2",
            timeout=60_000,
        )
        for question in ("Which image follows the prompt better?", "still recognisable", "Flags"):
            assert page.get_by_text(question).first.is_visible()
        assert page.get_by_text(base_prompt, exact=True).first.is_visible()
        for option in ("Tie", "Unsafe", "Broken image", *(names.get(d, d) for d in variant["dimensions"])):
            assert page.locator("label").filter(has_text=option).first.is_visible(), option
        browser.close()
