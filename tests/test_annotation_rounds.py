"""Human rounds against a real Label Studio: push, annotate through the API, pull, resolve, re-queue."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from label_studio_sdk import LabelStudio
from sklearn.metrics import cohen_kappa_score

from annotation import client, workflow
from annotation.server import Connection
from curation.core.errors import WidespecError
from curation.core.measures import wilson
from curation.core.workspace import Workspace
from tests.annotation_fixtures import (
    LabelStudioServer,
    configure,
    set_clip_outcomes,
    submit,
)
from tests.dataset_fixtures import populate
from tests.test_cli import widespec

pytestmark = pytest.mark.slow  # every test uses the real Label Studio server

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


def test_round_push_annotate_pull_resolve_requeue(ls_server: LabelStudioServer, team_ws: Workspace) -> None:
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
    choice = result.alpha["choice"]
    assert choice is not None and choice.value == pytest.approx(ALPHA_ALL)
    assert verdicts[regular[0]]["alpha"]["choice"] == pytest.approx(ALPHA_ALL)
    assert verdicts[regular[0]]["alpha_interval"]["choice"] == [choice.low, choice.high]
    assert result.alpha["subject_kept"] is None  # every answer "yes": alpha is undefined, not 1
    assert not result.excluded  # two gold answers each: too few for the default floor (5 answers)
    stats = {a.annotator: a for a in result.annotators}
    assert [stats[e].gold_accuracy for e in emails] == [1.0, 0.5, 0.0]
    assert [stats[e].agreement_with_majority for e in emails] == pytest.approx([1.0, 1.0, 2 / 3])
    assert len(set(ws.store.ids("verdict", round=2))) == 4  # gold pairs get no verdict

    # Excluding annotators under 50 % gold accuracy drops ann3: pair 2 becomes unanimous, alpha changes.
    configure(ws, min_gold_accuracy=0.5, min_gold_answers=2)
    excluded = workflow.resolve(ws, 2)
    assert [a.excluded for a in excluded.annotators] == [False, False, True]
    assert ws.store.get("verdict", verdicts[regular[1]]["id"])["votes"] == {"anti": 2}  # type: ignore[index]
    assert excluded.alpha["choice"] is not None
    assert excluded.alpha["choice"].value == pytest.approx(ALPHA_WITHOUT_ANN3)
    assert ws.store.count("annotation", round=2, annotator=emails[2]) == 6  # kept, only not counted
    table = widespec("-w", str(ws.root), "annotate", "report", "--round", "2", cwd=ws.root)
    assert table.returncode == 0, table.stderr
    assert "choice 0.533" in table.stdout and "ann3@widespec.local" in table.stdout and "0/2" in table.stdout
    assert f"excluded {emails[2]}: gold accuracy 0.00 (95% CI 0.00–0.66) on 2 gold answers" in table.stdout

    # The split pair is asked first in round 3; judged pairs are not asked again.
    configure(ws, pairs_per_round=2, gold_rate=0.0)
    third = workflow.push(ws, 3)
    round3 = [pair for pair, _g, _o in ws.store.state_get("annotation:round:3")["tasks"]]  # type: ignore[index]
    assert regular[3] in round3 and not set(regular[:3]) & set(round3)
    assert third.imported == len(round3)


def test_stopped_team_server_is_a_clear_error_and_changes_nothing(team_ws: Workspace) -> None:
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


def test_round_one_gold_from_a_file_excludes_a_careless_annotator(
    ls_server: LabelStudioServer,
    team_ws: Workspace,
    tmp_path: Path,
) -> None:
    ws = team_ws
    pairs = populate(ws, 25)
    ws.store.delete("verdict", ws.store.ids("verdict"))  # a fresh project: no round has run yet
    set_clip_outcomes(ws, dict.fromkeys(pairs, "accept"))
    # Five gold answers from a file: four `anti`, one `base`.
    expected = dict(zip(pairs[:5], ["anti", "anti", "base", "anti", "anti"], strict=True))
    gold_file = tmp_path / "gold.csv"
    gold_file.write_text("pair_id,expected\n" + "".join(f"{p},{e}\n" for p, e in expected.items()))
    added = widespec("-w", str(ws.root), "annotate", "gold", "add", str(gold_file), cwd=ws.root)
    assert added.returncode == 0, added.stderr
    configure(ws, pairs_per_round=20, rejected_rate=0.0, gold_rate=0.25)
    pushed = workflow.push(ws, 1)
    assert (pushed.regular, pushed.gold) == (20, 5)
    plan = {pair: (g, order) for pair, g, order in ws.store.state_get("annotation:round:1")["tasks"]}  # type: ignore[index]
    assert {p: g for p, (g, _o) in plan.items() if g is not None} == expected
    # Gold tasks look like every other task to annotators: the same data fields, nothing marks them.
    ls = LabelStudio(base_url=ls_server.url, api_key=ls_server.token)
    shapes = {tuple(sorted(t.data)) for t in ls.tasks.list(project=pushed.project_id, fields="task_only")}
    assert len(shapes) == 1

    regular = sorted(p for p, (g, _o) in plan.items() if g is None)
    truth = {p: ("anti", "base", "tie")[i % 3] for i, p in enumerate(regular)}
    second = {
        p: ("base" if truth[p] != "base" else "anti") if i in (3, 7, 11) else truth[p] for i, p in enumerate(regular)
    }
    answers = {
        0: {**truth, **expected},  # right on every gold task
        1: {**second, **expected, pairs[0]: "base"},  # 4 / 5 gold right
        2: dict.fromkeys(plan, "base"),  # 1 / 5 gold right: under the default floor of 0.6 after 5 answers
    }
    tasks = client.task_pairs(ls, pushed.project_id)
    for who, login in enumerate(ls_server.annotators):
        for pair, choice in answers[who].items():
            submit(ls_server.url, login.token, tasks[pair], choice, plan[pair][1])
    assert workflow.pull(ws, 1).annotations == 75

    report = widespec("-w", str(ws.root), "annotate", "resolve", "--round", "1", "--json", cwd=ws.root)
    assert report.returncode == 0, report.stderr
    resolved = json.loads(report.stdout)
    emails = [login.email for login in ls_server.annotators]
    wilson_low = wilson(1, 5).low  # type: ignore[union-attr]
    assert [e["annotator"] for e in resolved["excluded"]] == [emails[2]]
    assert f"gold accuracy 0.20 (95% CI {wilson_low:.2f}–" in resolved["excluded"][0]["reason"]
    ann = {a["annotator"]: a for a in resolved["annotators"]}
    assert [ann[e]["gold_correct"] for e in emails] == [5, 4, 1] and ann[emails[2]]["excluded"]
    assert ann[emails[1]]["gold_interval"]["low"] == pytest.approx(wilson(4, 5).low)  # type: ignore[union-attr]
    # Excluded answers stay stored but count in no verdict: every verdict rests on ann1 and ann2.
    assert ws.store.count("annotation", round=1, annotator=emails[2]) == 25
    verdicts = {v["subject_id"]: v for v in ws.store.iter("verdict", round=1)}
    assert set(verdicts) == set(regular)
    assert all(v["annotators"] == 2 for v in verdicts.values())
    assert [verdicts[p]["label"] for p in regular] == [
        "unresolved" if i in (3, 7, 11) else truth[p] for i, p in enumerate(regular)
    ]
    # Alpha over all 20 pairs of the round (not the resolved rows), with its interval, in every verdict record.
    codes = {"anti": 0, "base": 1, "tie": 2}
    data = np.array([[codes[answers[w][p]] for p in regular] for w in (0, 1)], dtype=float)
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert resolved["alpha"]["choice"]["value"] == pytest.approx(alpha)
    low, high = resolved["alpha"]["choice"]["low"], resolved["alpha"]["choice"]["high"]
    assert low < alpha < high
    assert {tuple(v["alpha_interval"]["choice"]) for v in verdicts.values()} == {(low, high)}
    # Cohen's kappa for each two annotators over their 25 shared tasks (gold included).
    kappas = {(k["first"], k["second"]): k for k in resolved["kappa"]}
    assert set(kappas) == {(emails[0], emails[1]), (emails[0], emails[2]), (emails[1], emails[2])}
    first, other = [answers[0][p] for p in plan], [answers[1][p] for p in plan]
    assert kappas[(emails[0], emails[1])]["shared"] == 25
    assert kappas[(emails[0], emails[1])]["kappa"] == pytest.approx(cohen_kappa_score(first, other))
    assert kappas[(emails[0], emails[2])]["kappa"] is None  # ann3 always says base: kappa says nothing
