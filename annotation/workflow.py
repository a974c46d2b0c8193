"""Human rounds end to end: push a round's tasks, pull its annotations, resolve its verdicts.

Each step is idempotent. The round's plan (pairs, gold answers, A/B orders, project id) is fixed at the first
push and kept in the store, so a rerun pushes only the tasks Label Studio does not hold yet; pull replaces each
annotator's answer with the server's latest; resolve recomputes every verdict of the round. Every step talks to
the server before writing anything, so an unreachable server leaves the store untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from annotation import client, labeling
from annotation.agreement import RoundResult, resolve_round
from annotation.rounds import plan_round
from annotation.server import Connection, connection, document_root
from curation.core.config import config_hash
from curation.core.errors import InputError, WidespecError
from curation.core.ids import content_hash, stable_id
from curation.core.images import ImageStore
from curation.core.pairs import Pair, iter_pairs
from curation.core.store import Record, utc_now
from curation.core.workspace import Workspace

ROUND_KEY = "annotation:round:{}"


@dataclass(frozen=True)
class PushResult:
    round: int
    project_id: int
    url: str
    regular: int
    gold: int
    imported: int
    already_there: int


@dataclass(frozen=True)
class PullResult:
    round: int
    annotations: int
    changed: int
    annotators: int


def _plan_record(ws: Workspace, round_number: int) -> dict[str, Any] | None:
    value = ws.store.state_get(ROUND_KEY.format(round_number))
    return dict(value) if value else None


def _require_plan(ws: Workspace, round_number: int) -> dict[str, Any]:
    plan = _plan_record(ws, round_number)
    if plan is None:
        raise InputError(f"round {round_number} was never pushed: run `widespec annotate push --round {round_number}`")
    return plan


def project_title(ws: Workspace, round_number: int) -> str:
    """Unique per workspace, so several workspaces can share one team server."""
    return f"{ws.config['project']['name']} round {round_number} [{content_hash(str(ws.root.resolve()))[:8]}]"


def _connect(ws: Workspace, conn: Connection | None, http: httpx.Client | None) -> tuple[Connection, Any]:
    conn = conn or connection(ws)
    ls = client.open_client(conn, http)
    with client.api_errors(conn.url):
        client.check(ls)
    return conn, ls


def _earlier_plans(ws: Workspace, round_number: int) -> list[dict[str, Any]]:
    return [p for n in range(1, round_number) if (p := _plan_record(ws, n)) is not None]


def _make_plan(ws: Workspace, round_number: int, pairs: dict[str, Pair]) -> dict[str, Any]:
    cfg = ws.config["annotation"]
    seed = int(ws.config["project"]["seed"])
    outcomes = {
        d["subject_id"]: d["outcome"] for d in ws.store.iter("decision", stage="clip") if d["subject_id"] in pairs
    }
    verdicts = list(ws.store.iter("verdict"))
    latest: dict[str, Record] = {}
    for verdict in sorted(verdicts, key=lambda v: v["round"]):
        if verdict["round"] < round_number:
            latest[verdict["subject_id"]] = verdict
    requeued = [p for p, v in latest.items() if v["round"] == round_number - 1 and v["label"] == "unresolved"]
    asked = {pair for plan in _earlier_plans(ws, round_number) for pair, _gold, _order in plan["tasks"]}
    done = (asked | set(latest)) - set(requeued)
    gold_pool = {
        p: v["label"]
        for p, v in latest.items()
        if v["label"] != "unresolved" and (v["agreement"] or 0) >= cfg["gold_min_agreement"] and p in pairs
    }
    plan = plan_round(
        round_number,
        outcomes,
        requeued=[p for p in requeued if p in pairs],
        done=done,
        gold_pool=gold_pool,
        pairs_per_round=cfg["pairs_per_round"],
        rejected_rate=cfg["rejected_rate"],
        gold_rate=cfg["gold_rate"],
        seed=seed,
    )
    tasks = [[pair, gold, labeling.ab_order(seed, round_number, pair)] for pair, gold in plan.tasks]
    return {"round": round_number, "project_id": None, "tasks": tasks}


def push(
    ws: Workspace, round_number: int, *, conn: Connection | None = None, http: httpx.Client | None = None
) -> PushResult:
    """Create the round's project (once) and import the tasks it does not hold yet, in chunks of 1,000."""
    if round_number < 1:
        raise InputError(f"--round {round_number}: rounds start at 1")
    conn, ls = _connect(ws, conn, http)
    docroot = document_root(ws)
    pairs = {p.id: p for p in iter_pairs(ws.store)}
    plan = _plan_record(ws, round_number) or _make_plan(ws, round_number, pairs)
    if not plan["tasks"]:
        raise InputError(
            f"round {round_number}: no pairs to ask about (need pairs with CLIP decisions not judged in earlier rounds)"
        )
    run_id = ws.store.start_run("annotate-push", config_hash(ws.config))
    try:
        with client.api_errors(conn.url):
            project_id = plan["project_id"]
            if project_id is not None and not client.project_exists(ls, project_id):
                raise WidespecError(
                    f"round {round_number}'s Label Studio project {project_id} is gone from {conn.url}: "
                    "it holds the round's annotations, restore the server data"
                )
            if project_id is None:
                title = project_title(ws, round_number)
                project_id = client.find_project(ls, title) or client.create_project(
                    ls, title, labeling.label_config(), ws.config["annotation"]["overlap"], _description(ws)
                )
                plan["project_id"] = project_id
                ws.store.state_put(ROUND_KEY.format(round_number), plan)
            client.ensure_local_storage(ls, project_id, str((ws.root / "images").resolve()))
            present = client.task_pairs(ls, project_id)
            names = labeling.dimension_names(ws)
            images = ImageStore((ws.root / "images").resolve())
            payloads = [
                pair_payload(images, pairs[pair], order, names, docroot)
                for pair, _gold, order in plan["tasks"]
                if pair not in present
            ]
            imported = client.import_tasks(ls, project_id, payloads)
    except BaseException as exc:
        ws.store.finish_run(run_id, "failed", {}, str(exc)[:500])
        raise
    gold = sum(1 for _pair, g, _order in plan["tasks"] if g is not None)
    result = PushResult(
        round_number, project_id, conn.url, len(plan["tasks"]) - gold, gold, len(imported), len(present)
    )
    ws.store.finish_run(
        run_id, "ok", {"imported": result.imported, "already_there": result.already_there, "gold": gold}
    )
    return result


def _description(ws: Workspace) -> str:
    return (
        "widespec human round. For each task: which image follows the prompt better, which requested qualities "
        f"the chosen image shows, whether the base subject is still recognisable. Dataset: {ws.config['project']['name']}."
    )


def pair_payload(
    images: ImageStore, pair: Pair, order: labeling.AbOrder, names: dict[str, str], docroot: Path
) -> dict[str, Any]:
    """The task data of a pair (images as local-files URLs under the server's document root)."""

    def url_of(render: Record) -> str:
        return labeling.image_url(images.path_for(render["image_sha256"]), docroot)

    return labeling.task_payload(
        pair.id,
        pair.variant["text"],
        pair.base["text"],
        url_of(pair.anti_render),
        url_of(pair.base_render),
        list(pair.variant["dimensions"]),
        names,
        order,
    )


def _utc(value: str | None) -> str:
    if not value:
        return utc_now()
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat(timespec="seconds")


def pull(
    ws: Workspace, round_number: int, *, conn: Connection | None = None, http: httpx.Client | None = None
) -> PullResult:
    """Store every annotator's latest answer for the round's tasks (A/B undone); rerunning changes nothing."""
    plan = _require_plan(ws, round_number)
    if plan["project_id"] is None:
        raise InputError(
            f"round {round_number}'s push did not finish: rerun `widespec annotate push --round {round_number}`"
        )
    conn, ls = _connect(ws, conn, http)
    with client.api_errors(conn.url):
        tasks = client.export_annotated_tasks(ls, plan["project_id"])
        emails = client.user_emails(ls)
    planned = {pair: (gold, order) for pair, gold, order in plan["tasks"]}
    dims = _dimensions(ws, set(planned))
    names = labeling.dimension_names(ws)
    latest: dict[str, Record] = {}
    for task in tasks:
        pair = str(task.get("data", {}).get("pair_id", ""))
        if pair not in planned:
            continue
        gold, order = planned[pair]
        for answer in sorted(task.get("annotations") or [], key=lambda a: (a.get("updated_at") or "", a["id"])):
            if answer.get("was_cancelled"):
                continue
            who = answer.get("completed_by")
            annotator = emails.get(who, str(who)) if isinstance(who, int) else str(who)
            record = {
                "id": stable_id("annotation", pair, round_number, annotator),
                "round": round_number,
                "subject_id": pair,
                "annotator": annotator,
                "task_id": task.get("id"),
                "gold": gold is not None,
                "ab_order": order,
                **labeling.parse_result(answer.get("result") or [], order, dims.get(pair, []), names),
                "created_at": _utc(answer.get("updated_at") or answer.get("created_at")),
            }
            latest[record["id"]] = record
    run_id = ws.store.start_run("annotate-pull", config_hash(ws.config))
    changed = ws.store.put("annotation", latest.values(), on_conflict="replace")
    result = PullResult(round_number, len(latest), changed, len({r["annotator"] for r in latest.values()}))
    ws.store.finish_run(run_id, "ok", {"annotations": result.annotations, "changed": changed})
    return result


def _dimensions(ws: Workspace, pair_ids: set[str]) -> dict[str, list[str]]:
    return {p.id: list(p.variant["dimensions"]) for p in iter_pairs(ws.store) if p.id in pair_ids}


def round_result(ws: Workspace, round_number: int) -> RoundResult:
    """The round's verdicts, alpha and annotator statistics computed from the stored annotations."""
    plan = _require_plan(ws, round_number)
    gold = {pair: label for pair, label, _order in plan["tasks"] if label is not None}
    annotations = [
        {**a, "gold_label": gold.get(a["subject_id"])} for a in ws.store.iter("annotation", round=round_number)
    ]
    cfg = ws.config["annotation"]
    return resolve_round(
        annotations,
        _dimensions(ws, {pair for pair, _g, _o in plan["tasks"]}),
        min_votes=cfg["min_votes"],
        min_gold_accuracy=cfg["min_gold_accuracy"],
        regular=[pair for pair, label, _order in plan["tasks"] if label is None],
    )


def resolve(ws: Workspace, round_number: int) -> RoundResult:
    """Write the round's verdicts (unresolved pairs are asked again first in the next round)."""
    result = round_result(ws, round_number)
    run_id = ws.store.start_run("annotate-resolve", config_hash(ws.config))
    records = []
    for verdict in result.verdicts:
        record_id = stable_id("verdict", verdict["subject_id"], round_number)
        old = ws.store.get("verdict", record_id)
        record = {"id": record_id, "round": round_number, **verdict}
        record["created_at"] = (
            old["created_at"] if old and {**old, "created_at": ""} == {**record, "created_at": ""} else utc_now()
        )
        records.append(record)
    with ws.store.transaction():
        ws.store.put("verdict", records, on_conflict="replace")
    labels: dict[str, int] = {}
    for record in records:
        labels[record["label"]] = labels.get(record["label"], 0) + 1
    ws.store.finish_run(run_id, "ok", labels)
    return result
