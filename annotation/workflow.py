"""Human rounds end to end: push a round's tasks, pull its annotations, resolve its verdicts.

Each step is idempotent. The round's plan (pairs, gold answers, A/B orders, project id) is fixed at the first
push and kept in the store, so a rerun pushes only the tasks Label Studio does not hold yet; pull replaces each
annotator's answer with the server's latest; resolve recomputes every verdict of the round. Every step talks to
the server before writing anything, so an unreachable server leaves the store untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from annotation import client, labeling, uploads
from annotation.agreement import GoldFloor, RoundResult, resolve_round
from annotation.gold import gold_answers
from annotation.progress import pending_pairs
from annotation.rounds import plan_round
from annotation.server import Connection, connection, document_root
from curation.core.errors import InputError, WidespecError
from curation.core.executor import execute
from curation.core.ids import content_hash
from curation.core.images import ImageStore
from curation.core.pairs import Pair, iter_pairs
from curation.core.records import annotation_record, verdict_record
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, utc_now
from curation.core.workspace import Workspace
from curation.domain.evidence import current_evidence
from curation.domain.fate import fate, latest_decisions

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
    uploaded: int  # images sent to a team server by this push (0 for the local server)


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
    return f"{ws.settings.project.name} round {round_number} [{content_hash(str(ws.root.resolve()))[:8]}]"


def _connect(ws: Workspace, conn: Connection | None, http: httpx.Client | None) -> tuple[Connection, Any]:
    conn = conn or connection(ws)
    ls = client.open_client(conn, http)
    with client.api_errors(conn.url):
        client.check(ls)
    return conn, ls


def _earlier_plans(ws: Workspace, round_number: int) -> list[dict[str, Any]]:
    return [p for n in range(1, round_number) if (p := _plan_record(ws, n)) is not None]


def round_candidates(ws: Workspace, pairs: Mapping[str, Pair]) -> dict[str, str]:
    """Pairs a round may ask about, each with its clip outcome: every current pair CLIP decided, except those
    whose fate is final before any human looks (the text checks rejected their variant)."""
    outcomes = {}
    for pair, evidence in current_evidence(ws.store):
        clip = latest_decisions(evidence.decisions).get("clip")
        if clip is not None and pair["id"] in pairs and fate(evidence, ws.settings.export.rows).by != "text":
            outcomes[pair["id"]] = str(clip["outcome"])
    return outcomes


def _make_plan(ws: Workspace, round_number: int, pairs: dict[str, Pair]) -> dict[str, Any]:
    cfg = ws.settings.annotation
    seed = int(ws.settings.project.seed)
    outcomes = round_candidates(ws, pairs)
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
        if v["label"] != "unresolved" and (v["agreement"] or 0) >= cfg.gold_min_agreement and p in pairs
    }
    known = {p: label for p, label in gold_answers(ws).items() if p in pairs}  # imported gold answers win
    gold_pool |= known
    plan = plan_round(
        round_number,
        outcomes,
        requeued=[p for p in requeued if p in pairs],
        done=done | set(known),  # a pair with a known answer is asked only as a gold task
        gold_pool=gold_pool,
        pairs_per_round=cfg.pairs_per_round,
        rejected_rate=cfg.rejected_rate,
        gold_rate=cfg.gold_rate,
        seed=seed,
    )
    tasks = [[pair, gold, labeling.ab_order(seed, round_number, pair)] for pair, gold in plan.tasks]
    return {"round": round_number, "project_id": None, "tasks": tasks}


@dataclass(frozen=True)
class RoundOptions:
    """Which round, and optionally the server connection and HTTP client to use (tests, benchmarks)."""

    round: int
    conn: Connection | None = None
    http: httpx.Client | None = None


# How a compute step that ends with a value reads: `value = yield from step`, outputs committed on the way.
Step = Generator[Output, None, dict[str, str]]


@dataclass(frozen=True)
class LocalImages:
    """Images of the local server: a local-files storage grants the project its folder, tasks name the files."""

    folder: Path  # the workspace's images/, resolved
    docroot: Path

    def urls(self, ls: Any, project_id: int, shas: set[str], http: httpx.Client) -> Step:
        """sha256 → local-files URL of each image, each checked against its name first: the server shows the file
        as it is, so a missing or damaged image stops the push, naming it."""
        store = ImageStore(self.folder)
        for sha in sorted(shas):
            try:
                store.read(sha)
            except FileNotFoundError:
                raise WidespecError(f"image {sha} of the round is missing from {self.folder}") from None
        client.ensure_local_storage(ls, project_id, str(self.folder))
        return {sha: labeling.image_url(store.path_for(sha), self.docroot) for sha in shas}
        yield  # a step like the uploads: nothing to commit


@dataclass(frozen=True)
class UploadedImages:
    """Images of a team server, uploaded once each into the workspace's images project there: those recorded,
    or found on the server, are not sent again."""

    folder: Path
    conn: Connection
    title: str  # of the images project
    project_id: int | None  # the images project, from durable state
    recorded: dict[str, str]  # sha256 → URL in that project, from durable state
    concurrency: int
    batch: int

    def _project(self, ls: Any) -> Generator[Output, None, int]:
        """The images project's id: the recorded one while it exists, else found by title or created."""
        if self.project_id is not None and client.project_exists(ls, self.project_id):
            return self.project_id
        found = client.find_project(ls, self.title) or client.create_project(
            ls, self.title, uploads.IMAGES_CONFIG, 1, uploads.IMAGES_DESCRIPTION
        )
        yield Output(state={uploads.project_key(self.conn.url): found})
        return found

    def urls(self, ls: Any, project_id: int, shas: set[str], http: httpx.Client) -> Step:
        """sha256 → upload URL of each image; every finished request's uploads are recorded as it ends."""
        images_project = yield from self._project(ls)
        recorded = self.recorded if images_project == self.project_id else {}
        urls = {sha: url for sha, url in recorded.items() if sha in shas}
        if not shas - set(urls):
            return urls
        uploader = uploads.Uploader(self.conn, images_project, http, self.concurrency, self.batch)
        found = {sha: url for sha, url in uploader.on_server().items() if sha in shas and sha not in urls}
        if found:  # uploaded by a push that stopped before recording them
            state = uploads.state_entries(self.conn.url, images_project, found)
            yield Output(state=state, counts=Counter(found=len(found)))
            urls |= found
        store = ImageStore(self.folder)
        todo = [(sha, store.path_for(sha)) for sha in sorted(shas - set(urls))]
        for done in uploader.upload(todo):
            state = uploads.state_entries(self.conn.url, images_project, done)
            yield Output(state=state, counts=Counter(uploaded=len(done)))
            urls |= done
        return urls


@dataclass(frozen=True)
class ImportRound:
    """Push's compute: creates the round's Label Studio project once, makes the tasks' images reachable (local
    files or uploads), then imports the planned tasks in chunks of IMPORT_CHUNK."""

    plan: dict[str, Any]
    title: str
    description: str
    overlap: int
    conn: Connection
    http: httpx.Client | None
    images: LocalImages | UploadedImages

    def run(self, units: Sequence[dict[str, Any]]) -> Iterator[Output]:
        http = self.http or httpx.Client(timeout=300, follow_redirects=True)
        try:
            yield from self._run(units, http)
        finally:
            if http is not self.http:
                http.close()  # the round's own client; a caller's stays open

    def _run(self, units: Sequence[dict[str, Any]], http: httpx.Client) -> Iterator[Output]:
        ls = client.open_client(self.conn, http)
        key = ROUND_KEY.format(self.plan["round"])
        with client.api_errors(self.conn.url):
            project_id = self.plan["project_id"]
            if project_id is None:
                project_id = client.find_project(ls, self.title) or client.create_project(
                    ls, self.title, labeling.label_config(), self.overlap, self.description
                )
                yield Output(state={key: {**self.plan, "project_id": project_id}})
            shas = {p[field] for p in units for field in labeling.IMAGE_FIELDS}
            urls = yield from self.images.urls(ls, project_id, shas, http)
            for start in range(0, len(units), client.IMPORT_CHUNK):
                chunk = [labeling.with_urls(p, urls) for p in units[start : start + client.IMPORT_CHUNK]]
                imported = client.import_tasks(ls, project_id, chunk)
                yield Output(counts=Counter(imported=len(imported)), advance=len(chunk))

    @contextmanager
    def opened(self) -> Iterator[ImportRound]:
        yield self


class PushStage(Stage):
    """A round's plan (durable state, fixed at the first push) and its tasks in Label Studio."""

    name = "annotate-push"
    needs = ("pair", "decision", "verdict")

    def pending(self, ws: Workspace) -> int:
        return pending_pairs(ws)

    def plan(self, ws: Workspace, options: RoundOptions | None = None) -> Work | None:
        round_number = options.round if options else current_round(ws)
        if round_number < 1:
            raise InputError(f"--round {round_number}: rounds start at 1")
        conn, ls = _connect(ws, options.conn if options else None, options.http if options else None)
        pairs = {p.id: p for p in iter_pairs(ws.store)}
        stored = _plan_record(ws, round_number)
        plan = stored or _make_plan(ws, round_number, pairs)
        gold = sum(1 for _pair, g, _order in plan["tasks"] if g is not None)
        details = {
            "round": round_number,
            "url": conn.url,
            "regular": len(plan["tasks"]) - gold,
            "gold": gold,
            "uploads": bool(ws.settings.annotation.url),
        }
        if not plan["tasks"]:
            return Work([], details={**details, "no_pairs": True})
        present: set[str] = set()
        with client.api_errors(conn.url):
            if plan["project_id"] is not None:
                if not client.project_exists(ls, plan["project_id"]):
                    raise WidespecError(
                        f"round {round_number}'s Label Studio project {plan['project_id']} is gone from {conn.url}: "
                        "it holds the round's annotations, restore the server data"
                    )
                present = set(client.task_pairs(ls, plan["project_id"]))
        names = labeling.dimension_names(ws)
        payloads = [
            pair_payload(pairs[pair], order, names) for pair, _gold, order in plan["tasks"] if pair not in present
        ]
        compute = ImportRound(
            plan,
            project_title(ws, round_number),
            _description(ws),
            ws.settings.annotation.overlap,
            conn,
            options.http if options else None,
            _images(ws, conn),
        )
        before = None if stored else Output(state={ROUND_KEY.format(round_number): plan})
        return Work(
            payloads,
            compute.opened,
            before=before,
            label=f"push round {round_number}",
            unit="tasks",
            total=0,
            details={**details, "already_there": len(present)},
        )

    def work_done(self, result: StageResult) -> int:
        return result.counts["imported"]  # tasks now on the server; the store only gains the round's plan

    def summary(self, result: StageResult) -> str:
        d, c = result.details, result.counts
        if d.get("no_pairs"):
            return f"round {d['round']}: no pairs to ask about yet"
        sent = f", {c['uploaded']} images uploaded" if d.get("uploads") else ""
        return f"round {d['round']}: {c['imported']} tasks imported ({d['already_there']} already there){sent} at {d['url']}"


def _images(ws: Workspace, conn: Connection) -> LocalImages | UploadedImages:
    """Local files for the local server; uploads for a team server (annotation.url), which shares no folder."""
    folder = (ws.root / "images").resolve()
    cfg = ws.settings.annotation
    if not cfg.url:
        return LocalImages(folder, document_root(ws))
    images_project = ws.store.state_get(uploads.project_key(conn.url))
    recorded = uploads.recorded(ws.store, conn.url, images_project) if images_project is not None else {}
    title = f"{ws.settings.project.name} images [{content_hash(str(ws.root.resolve()))[:8]}]"
    return UploadedImages(folder, conn, title, images_project, recorded, cfg.upload_concurrency, cfg.upload_batch)


PUSH = PushStage()


def current_round(ws: Workspace) -> int:
    """The first round that has not been resolved yet (round 1 on a new workspace)."""
    number = 1
    while ws.store.state_get(ROUND_KEY.format(number)) is not None and ws.store.count("verdict", round=number):
        number += 1
    return number


def push(
    ws: Workspace, round_number: int, *, conn: Connection | None = None, http: httpx.Client | None = None
) -> PushResult:
    """Create the round's project (once), make the images reachable (a team server gets each image uploaded
    once) and import the tasks it does not hold yet, in chunks of 1,000."""
    result = execute(ws, PUSH, RoundOptions(round_number, conn, http))
    d = result.details
    if d.get("no_pairs"):
        raise InputError(
            f"round {round_number}: no pairs to ask about (need pairs with CLIP decisions not judged in earlier rounds)"
        )
    plan = _require_plan(ws, round_number)
    return PushResult(
        round_number,
        plan["project_id"],
        d["url"],
        d["regular"],
        d["gold"],
        result.counts["imported"],
        d["already_there"],
        result.counts["uploaded"],
    )


def _description(ws: Workspace) -> str:
    return (
        "widespec human round. For each task: which image follows the prompt better, which requested qualities "
        f"the chosen image shows, whether the base subject is still recognisable. Dataset: {ws.settings.project.name}."
    )


def pair_payload(pair: Pair, order: labeling.AbOrder, names: dict[str, str]) -> dict[str, Any]:
    """The task data of a pair, its images named by sha256 (`labeling.with_urls` gives them their URLs)."""
    return labeling.task_payload(
        pair.id,
        pair.variant["text"],
        pair.base["text"],
        pair.anti_render["image_sha256"],
        pair.base_render["image_sha256"],
        list(pair.variant["dimensions"]),
        names,
        order,
    )


def _utc(value: str | None) -> str:
    if not value:
        return utc_now()
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ParseAnswers:
    """Pull's compute: every annotator's latest answer per task as an annotation record, A/B order undone."""

    round: int
    planned: dict[str, tuple[str | None, Any]]
    dimensions: dict[str, list[str]]
    names: dict[str, str]
    emails: dict[int, str]

    def run(self, units: Sequence[dict[str, Any]]) -> Iterator[Output]:
        latest: dict[str, Record] = {}
        for task in units:
            pair = str(task.get("data", {}).get("pair_id", ""))
            if pair not in self.planned:
                continue
            gold, order = self.planned[pair]
            for answer in sorted(task.get("annotations") or [], key=lambda a: (a.get("updated_at") or "", a["id"])):
                if answer.get("was_cancelled"):
                    continue
                who = answer.get("completed_by")
                annotator = self.emails.get(who, str(who)) if isinstance(who, int) else str(who)
                record = annotation_record(
                    pair,
                    self.round,
                    annotator,
                    labeling.parse_result(answer.get("result") or [], order, self.dimensions.get(pair, []), self.names),
                    task_id=task.get("id"),
                    gold=gold is not None,
                    ab_order=order,
                    created_at=_utc(answer.get("updated_at") or answer.get("created_at")),
                )
                latest[record["id"]] = record
        annotators = len({r["annotator"] for r in latest.values()})
        counts = Counter(annotations=len(latest), annotators=annotators)
        yield Output(records={"annotation": list(latest.values())}, counts=counts, advance=len(units))

    @contextmanager
    def opened(self) -> Iterator[ParseAnswers]:
        yield self


class PullStage(Stage):
    """Every annotator's latest answers of a round, read from Label Studio."""

    name = "annotate-pull"
    makes = ("annotation",)

    def pending(self, ws: Workspace) -> int:
        return 0  # answers arrive on the server; only a pull can tell

    def plan(self, ws: Workspace, options: RoundOptions | None = None) -> Work | None:
        assert options is not None
        round_number = options.round
        plan = _require_plan(ws, round_number)
        if plan["project_id"] is None:
            raise InputError(
                f"round {round_number}'s push did not finish: rerun `widespec annotate push --round {round_number}`"
            )
        conn, ls = _connect(ws, options.conn, options.http)
        with client.api_errors(conn.url):
            tasks = client.export_annotated_tasks(ls, plan["project_id"])
            emails = client.user_emails(ls)
        planned = {pair: (gold, order) for pair, gold, order in plan["tasks"]}
        compute = ParseAnswers(
            round_number, planned, _dimensions(ws, set(planned)), labeling.dimension_names(ws), emails
        )
        return Work(tasks, compute.opened, label=f"pull round {round_number}", unit="tasks", total=0)


PULL = PullStage()


def pull(
    ws: Workspace, round_number: int, *, conn: Connection | None = None, http: httpx.Client | None = None
) -> PullResult:
    """Store every annotator's latest answer for the round's tasks (A/B undone); rerunning changes nothing."""
    result = execute(ws, PULL, RoundOptions(round_number, conn, http))
    c = result.counts
    return PullResult(round_number, c["annotations"], result.written, c["annotators"])


def _dimensions(ws: Workspace, pair_ids: set[str]) -> dict[str, list[str]]:
    return {p.id: list(p.variant["dimensions"]) for p in iter_pairs(ws.store) if p.id in pair_ids}


@dataclass(frozen=True)
class ResolveVerdicts:
    """Resolve's compute: the round's verdicts (majority, agreement, alpha) as records, from its annotations."""

    round: int
    annotations: list[dict[str, Any]]
    dimensions: dict[str, list[str]]
    regular: list[str]
    min_votes: int
    floor: GoldFloor
    seed: int

    def result(self) -> RoundResult:
        return resolve_round(
            self.annotations,
            self.dimensions,
            min_votes=self.min_votes,
            floor=self.floor,
            seed=self.seed,
            regular=self.regular,
        )

    def run(self, units: Sequence[int]) -> Iterator[Output]:
        records = [verdict_record(v["subject_id"], self.round, v) for v in self.result().verdicts]
        yield Output(records={"verdict": records}, counts=Counter(r["label"] for r in records), advance=len(units))

    @contextmanager
    def opened(self) -> Iterator[ResolveVerdicts]:
        yield self


def _resolver(ws: Workspace, round_number: int) -> ResolveVerdicts:
    plan = _require_plan(ws, round_number)
    gold = {pair: label for pair, label, _order in plan["tasks"] if label is not None}
    annotations = [
        {**a, "gold_label": gold.get(a["subject_id"])} for a in ws.store.iter("annotation", round=round_number)
    ]
    cfg = ws.settings.annotation
    return ResolveVerdicts(
        round_number,
        annotations,
        _dimensions(ws, {pair for pair, _g, _o in plan["tasks"]}),
        [pair for pair, label, _order in plan["tasks"] if label is None],
        cfg.min_votes,
        GoldFloor(cfg.min_gold_accuracy, cfg.min_gold_answers),
        int(ws.settings.project.seed),
    )


def round_result(ws: Workspace, round_number: int) -> RoundResult:
    """The round's verdicts, alpha, kappa and annotator statistics computed from the stored annotations."""
    return _resolver(ws, round_number).result()


class ResolveStage(Stage):
    """A round's verdicts; unresolved pairs are asked again first in the next round."""

    name = "annotate-resolve"
    needs = ("annotation",)
    makes = ("verdict",)

    def pending(self, ws: Workspace) -> int:
        return 0

    def plan(self, ws: Workspace, options: RoundOptions | None = None) -> Work | None:
        assert options is not None
        compute = _resolver(ws, options.round)
        return Work([options.round], compute.opened, label=f"resolve round {options.round}", total=0)


RESOLVE = ResolveStage()


def resolve(ws: Workspace, round_number: int) -> RoundResult:
    """Write the round's verdicts (unresolved pairs are asked again first in the next round)."""
    execute(ws, RESOLVE, RoundOptions(round_number))
    return round_result(ws, round_number)
