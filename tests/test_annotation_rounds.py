"""Human rounds against a real Label Studio: push, annotate through the API, pull, resolve, re-queue."""

from __future__ import annotations

import pytest
from label_studio_sdk import LabelStudio

from annotation import client, workflow
from annotation.server import Connection
from curation.core.errors import WidespecError
from curation.core.workspace import Workspace
from tests.annotation_fixtures import (  # noqa: F401
    LabelStudioServer,
    configure,
    ls_server,
    set_clip_outcomes,
    submit,
    team_ws,
)
from tests.dataset_fixtures import populate
from tests.test_cli import widespec

# Planted answers (anti / base / tie) of ann1, ann2, ann3 for the round's four regular pairs, in pair-id order.
PLANTED = [("anti", "anti", "anti"), ("anti", "anti", "base"), ("base", "base", "base"), ("anti", "base", "tie")]
# Answers to the two gold pairs, whose known label (from round 1) is `anti`: 2/2, 1/2 and 0/2 right.
GOLD_ANSWERS = [("anti", "anti"), ("anti", "base"), ("base", "base")]
# Krippendorff's alpha (nominal) of PLANTED by hand: 12 pairable values, n_anti 6, n_base 5, n_tie 1.
# Off-diagonal coincidences: pair 2 gives anti-base 1 + base-anti 1, pair 4 gives 0.5 for each of its 6 ordered
# pairs, so D_o = 5; D_e = 2 (6*5 + 6*1 + 5*1) / 11 = 82/11; alpha = 1 - 5 * 11 / 82 = 27/82.
ALPHA_ALL = 27 / 82
# Without ann3: 8 values, n_anti 5, n_base 3; only pair 4 disagrees: D_o = 2, D_e = 2*5*3/7; alpha = 1 - 14/30.
ALPHA_WITHOUT_ANN3 = 8 / 15


def _round_two(ws: Workspace) -> tuple[dict[str, int], dict[str, tuple[str | None, str]]]:
    """Push round 2 of an 8-pair workspace: 4 regular pairs (never judged) + 2 gold (round-1 verdicts)."""
    pairs = populate(ws, 8)
    set_clip_outcomes(ws, {p: "accept" if i % 4 else "review" for i, p in enumerate(pairs)})
    configure(ws, pairs_per_round=4, rejected_rate=0.0, gold_rate=0.5, gold_min_agreement=0.6)
    result = workflow.push(ws, 2)
    assert (result.regular, result.gold, result.imported, result.already_there) == (4, 2, 6, 0)
    plan = ws.store.state_get("annotation:round:2")
    assert plan is not None
    conn = workflow.connection(ws)
    tasks = client.task_pairs(LabelStudio(base_url=conn.url, api_key=conn.token), result.project_id)
    return tasks, {pair: (gold, order) for pair, gold, order in plan["tasks"]}


def _annotate(server: LabelStudioServer, tasks: dict[str, int], plan: dict[str, tuple[str | None, str]]) -> list[str]:
    regular = sorted(p for p, (gold, _o) in plan.items() if gold is None)
    gold = sorted(p for p, (g, _o) in plan.items() if g is not None)
    for who, login in enumerate(server.annotators):
        for pair, answers in zip(regular, PLANTED, strict=True):
            submit(server.url, login.token, tasks[pair], answers[who], plan[pair][1], qualities=("Blurry",))
        for pair, answer in zip(gold, GOLD_ANSWERS[who], strict=True):
            submit(server.url, login.token, tasks[pair], answer, plan[pair][1])
    return regular


def test_round_push_annotate_pull_resolve_requeue(ls_server: LabelStudioServer, team_ws: Workspace) -> None:  # noqa: F811
    ws = team_ws
    tasks, plan = _round_two(ws)
    assert len(tasks) == 6
    # Rerunning push adds nothing.
    again = workflow.push(ws, 2)
    assert (again.imported, again.already_there) == (0, 6)
    regular = _annotate(ls_server, tasks, plan)

    pulled = workflow.pull(ws, 2)
    assert (pulled.annotations, pulled.changed, pulled.annotators) == (18, 18, 3)
    assert workflow.pull(ws, 2).changed == 0  # idempotent
    assert ws.store.count("annotation", round=2) == 18
    emails = [login.email for login in ls_server.annotators]
    for pair, answers in zip(regular, PLANTED, strict=True):
        stored = {a["annotator"]: a for a in ws.store.iter("annotation", round=2, subject_id=pair)}
        assert [stored[e]["choice"] for e in emails] == list(answers)  # A/B undone
        assert all(a["ab_order"] == plan[pair][1] and not a["gold"] for a in stored.values())

    result = workflow.resolve(ws, 2)
    verdicts = {v["subject_id"]: v for v in ws.store.iter("verdict", round=2)}
    assert [verdicts[p]["label"] for p in regular] == ["anti", "anti", "base", "unresolved"]
    assert [verdicts[p]["votes"] for p in regular] == [
        {"anti": 3},
        {"anti": 2, "base": 1},
        {"base": 3},
        {"anti": 1, "base": 1, "tie": 1},
    ]
    assert verdicts[regular[1]]["agreement"] == pytest.approx(2 / 3)
    assert result.alpha["choice"] == pytest.approx(ALPHA_ALL)
    assert result.alpha["subject_kept"] is None  # every answer "yes": alpha is undefined, not 1
    stats = {a.annotator: a for a in result.annotators}
    assert [stats[e].gold_accuracy for e in emails] == [1.0, 0.5, 0.0]
    assert [stats[e].agreement_with_majority for e in emails] == pytest.approx([1.0, 1.0, 2 / 3])
    assert len(set(ws.store.ids("verdict", round=2))) == 4  # gold pairs get no verdict

    # Excluding annotators under 50 % gold accuracy drops ann3: pair 2 becomes unanimous, alpha changes.
    configure(ws, min_gold_accuracy=0.5)
    excluded = workflow.resolve(ws, 2)
    assert [a.excluded for a in excluded.annotators] == [False, False, True]
    assert ws.store.get("verdict", verdicts[regular[1]]["id"])["votes"] == {"anti": 2}  # type: ignore[index]
    assert excluded.alpha["choice"] == pytest.approx(ALPHA_WITHOUT_ANN3)
    table = widespec("-w", str(ws.root), "annotate", "report", "--round", "2", cwd=ws.root)
    assert table.returncode == 0, table.stderr
    assert "choice 0.533" in table.stdout and "ann3@widespec.local" in table.stdout and "0/2" in table.stdout

    # The split pair is asked first in round 3; judged pairs are not asked again.
    configure(ws, pairs_per_round=2, gold_rate=0.0)
    third = workflow.push(ws, 3)
    round3 = [pair for pair, _g, _o in ws.store.state_get("annotation:round:3")["tasks"]]  # type: ignore[index]
    assert regular[3] in round3 and not set(regular[:3]) & set(round3)
    assert third.imported == len(round3)


def test_stopped_team_server_is_a_clear_error_and_changes_nothing(team_ws: Workspace) -> None:  # noqa: F811
    populate(team_ws, 2)
    port_nobody_uses = Connection("http://127.0.0.1:9", "0" * 40)
    before = (team_ws.store.count("annotation"), team_ws.store.runs(), team_ws.store.state_get("annotation:round:1"))
    with pytest.raises(WidespecError, match="not reachable"):
        workflow.push(team_ws, 1, conn=port_nobody_uses)
    runs = team_ws.store.runs()
    assert before == (team_ws.store.count("annotation"), runs[1:], team_ws.store.state_get("annotation:round:1"))
    # The ledger says what happened: one failed push carrying the reason, no counts.
    assert (runs[0]["stage"], runs[0]["status"], runs[0]["counts"]) == ("annotate-push", "failed", {})
    assert "not reachable" in runs[0]["error"]
