"""`widespec report`: one self-contained HTML file (plots and gallery images embedded)."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.app.report_data import CLIP_METRICS, ReportData, gather
from curation.app.text_context import text_context_line
from curation.core.errors import ImageDamaged
from curation.core.files import write_atomic
from curation.core.images import ImageStore
from curation.core.intervals import Interval, interval_text
from curation.core.judges import configured_judge
from curation.core.scorer import configured_scorer
from curation.core.store import utc_now
from curation.core.verdicts import ALPHA_QUESTIONS
from curation.core.workspace import Workspace

if TYPE_CHECKING:
    from curation.audit.metrics import ModelAudit

OUTCOME_COLOURS = {"accept": "#2b8a3e", "review": "#e67700", "reject": "#c92a2a", "undecided": "#868e96"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} .warn{background:#fff3bf;border:1px solid #f08c00;
padding:.6rem 1rem;border-radius:4px} .gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));
gap:1rem} figure{margin:0;border:1px solid #ddd;border-radius:4px;padding:.5rem} figure img{width:48%;margin-right:2%;
image-rendering:pixelated} figcaption{font-size:.85rem} .muted{color:#666}
"""


def _alpha_cell(value: float | None, interval: tuple[float, float] | None) -> str:
    return interval_text(None if value is None else Interval(value, *(interval or (None, None))), 2, "–")


def _e(value: object) -> str:
    return html.escape(str(value))


def _png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def histogram_png(values_by_outcome: dict[str, list[float]], metric: str) -> bytes:
    """A histogram of one metric for each decision outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.2, 2.8), dpi=100)
    for outcome, values in sorted(values_by_outcome.items()):
        axis.hist(values, bins=20, alpha=0.6, label=f"{outcome} ({len(values)})", color=OUTCOME_COLOURS.get(outcome))
    axis.set_title(metric)
    axis.set_xlabel("value")
    axis.set_ylabel("pairs")
    axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _counter_table(title: str, rows: dict[str, Counter[str]]) -> str:
    outcomes = ("accept", "review", "reject", "undecided")
    head = "".join(f"<th>{o}</th>" for o in outcomes)
    body = ""
    for name, counts in rows.items():
        total = sum(counts.values())
        rate = f"{counts['accept'] / total:.0%}" if total else "–"
        cells = "".join(f"<td class=n>{counts.get(o, 0)}</td>" for o in outcomes)
        body += f"<tr><td>{_e(name)}</td>{cells}<td class=n>{rate}</td></tr>"
    return f"<table><tr><th>{_e(title)}</th>{head}<th>accepted</th></tr>{body}</table>"


def audit_section(audits: Sequence[ModelAudit]) -> str:
    """Reward models on each audited population: the paper's figures with intervals, and the accuracy plot."""
    from curation.audit.publishing import CIRCULAR, accuracy_plot

    parts = ["<h2>Reward-model audits</h2>"]
    if not audits:
        return parts[0] + "<p class=muted>No audit yet: run <code>widespec audit --models ...</code>.</p>"
    for population in sorted({a.population for a in audits}):
        shown = [a for a in audits if a.population == population]
        parts.append(f"<h3>{_e(population)}</h3><table class=audit><tr><th>model</th><th>pairs</th>")
        parts.append("<th>accuracy</th><th>F1</th><th>AUROC</th><th>wrong image wins</th><th>note</th></tr>")
        for a in shown:
            f = a.overall
            note = "circular" if a.circular else ""
            cells = [interval_text(v) for v in (f.accuracy, f.f1, f.auroc, f.wrong_image_wins)]
            parts.append(
                f"<tr><td>{_e(a.model)}</td><td class=n>{a.pairs}</td>"
                + "".join(f"<td class=n>{_e(c)}</td>" for c in cells)
                + f"<td>{note}</td></tr>"
            )
        parts.append("</table>")
        parts.append(f'<img class=plot alt="accuracy per reward model" src="{_png_data_uri(accuracy_plot(shown))}">')
        if any(a.circular for a in shown):
            parts.append(f"<p class=muted>{_e(CIRCULAR.replace('**', ''))}</p>")
    return "".join(parts)


def _interval(figure: dict[str, Any] | None) -> str:
    return interval_text(figure, missing="–")


def judge_section(report: dict[str, Any] | None) -> str:
    """The VLM judge against the humans, its position bias and each generator's success rate (`judge report`)."""
    parts = ["<h2 id=judge>VLM judge</h2>"]
    if report is None:
        return (
            parts[0]
            + "<p class=muted>No judge configured: set <code>[judge] model</code> and run <code>widespec judge</code>.</p>"
        )
    parts.append(
        f"<p>{_e(report['judge'])}: "
        + _e(", ".join(f"{k} {v}" for k, v in sorted(report["judgments"].items())))
        + "</p>"
    )
    found = report["agreement"]
    if found is None:
        parts.append("<p class=muted>No pair has both a judge and a human verdict yet.</p>")
    else:
        parts.append(
            f"<p>Against the latest human verdicts, {found['n']} pairs: accuracy {_e(_interval(found['accuracy']))}, "
            f"Cohen's kappa {_e(_interval(found['kappa']))}, quadratic-weighted kappa "
            f"{_e(_interval(found['quadratic_kappa']))} (95% bootstrap intervals; an order-flipping judgment counts "
            "as a tie).</p><table id=judge-confusion><tr><th>human \\ judge</th><th>base</th><th>tie</th><th>anti</th></tr>"
        )
        for human, row in found["confusion"].items():
            parts.append(
                f"<tr><td>{human}</td>"
                + "".join(f"<td class=n>{row[j]}</td>" for j in ("base", "tie", "anti"))
                + "</tr>"
            )
        parts.append("</table>")
    flips = report["flips"]
    parts.append(
        f"<p>Position bias: {flips['flipped']} of {flips['checked']} pairs flipped with the A/B order ({_e(_interval(flips['rate']))}).</p>"
    )
    parts.append(
        "<table id=judge-success><tr><th>generator</th><th>success rate</th><th>judged</th><th>tie</th><th>base</th><th>inconsistent</th></tr>"
    )
    for generator, rate in report["success_rates"].items():
        parts.append(
            f"<tr><td>{_e(generator)}</td><td class=n>{_e(_interval(rate['rate']))}</td><td class=n>{rate['judged']}</td>"
            f"<td class=n>{rate['tie']}</td><td class=n>{rate['base']}</td><td class=n>{rate['inconsistent']}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def render_html(
    data: ReportData,
    images: ImageStore,
    title: str,
    audits: Sequence[ModelAudit] = (),
    judge: dict[str, Any] | None = None,
) -> str:
    """The report as one HTML string with every plot and image inlined."""
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title><style>{STYLE}</style>"]
    parts.append(f"</head><body><h1>{_e(title)}</h1><p class=muted>generated {utc_now()} by widespec</p>")
    if data.random_weight_models:
        models = ", ".join(data.random_weight_models)
        parts.append(
            f"<p class=warn id=random-weights><b>Test models:</b> {_e(models)} are widespec's built-in models with "
            "random weights. Their images and scores exercise the pipeline; they are not research data.</p>"
        )
    parts.append("<h2>Funnel</h2><table id=funnel><tr><th>stage</th><th>records</th><th>by status</th></tr>")
    for stage, total, detail in data.funnel:
        breakdown = ", ".join(f"{k} {v}" for k, v in sorted(detail.items()))
        parts.append(f"<tr><td>{_e(stage)}</td><td class=n>{total}</td><td>{_e(breakdown)}</td></tr>")
    parts.append("</table><h2>Acceptance</h2>")
    parts.append(_counter_table("intensity", data.acceptance_by_intensity))
    parts.append(_counter_table("dimension", data.acceptance_by_dimension))
    parts.append("<h2>CLIP metrics: accepted and rejected pairs</h2><div id=plots>")
    plotted = 0
    for metric in CLIP_METRICS:
        by_outcome = data.metrics_by_outcome.get(metric, {})
        if any(by_outcome.values()):
            uri = _png_data_uri(histogram_png(by_outcome, metric))
            parts.append(f'<img class=plot alt="{metric} histogram" src="{uri}">')
            plotted += 1
    if not plotted:
        parts.append("<p class=muted>No scores yet: run <code>widespec score</code>.</p>")
    context = text_context_line(data.text_context)
    if context:
        parts.append(f"<p id=text-context>{_e(context)} (scorer {_e(data.scorer or '')}).</p>")
    parts.append("</div><h2>Human rounds</h2>")
    if data.rounds:
        parts.append("<table id=rounds><tr><th>round</th><th>pairs</th><th>annotations</th><th>labels</th>")
        parts.append("".join(f"<th>alpha: {_e(q)}</th>" for q in ALPHA_QUESTIONS) + "<th>winning-vote share</th></tr>")
        for row in data.rounds:
            labels = ", ".join(f"{k} {v}" for k, v in sorted(row["labels"].items()))
            alphas = "".join(
                f"<td class=n>{_alpha_cell(row['alpha'][q], row['alpha_interval'][q])}</td>" for q in ALPHA_QUESTIONS
            )
            share = "–" if row["mean_winning_share"] is None else f"{row['mean_winning_share']:.2f}"
            parts.append(
                f"<tr><td>{row['round']}</td><td class=n>{row['pairs']}</td><td class=n>{row['annotations']}</td>"
                f"<td>{_e(labels)}</td>{alphas}<td class=n>{share}</td></tr>"
            )
        parts.append(
            "</table><p class=muted>Krippendorff's alpha (nominal) over every pair the round asked, with its "
            "bootstrap 95% interval; the winning-vote share (mean share of votes for the majority label) is high by "
            "construction and is not an agreement figure.</p>"
        )
    else:
        parts.append("<p class=muted>No human round resolved yet.</p>")
    parts.append(judge_section(judge))
    parts.append(audit_section(audits))
    parts.append("<h2>Spend</h2>")
    if data.spend:
        parts.append("<table><tr><th>stage</th><th>model</th><th>calls</th><th>tokens in</th><th>tokens out</th>")
        parts.append("<th>cost</th></tr>")
        for row in data.spend:
            cost = "–" if row["cost"] is None else f"${row['cost']:.4f}"
            parts.append(
                f"<tr><td>{_e(row['stage'])}</td><td>{_e(row['model'])}</td><td class=n>{row['calls']}</td>"
                f"<td class=n>{row['prompt_tokens']}</td><td class=n>{row['completion_tokens']}</td>"
                f"<td class=n>{cost}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p class=muted>No paid calls recorded.</p>")
    parts.append("<h2>Gallery</h2><div class=gallery id=gallery>")
    for pair in data.gallery:
        outcome = data.decisions.get(pair.id, "undecided")
        shown = []
        for label, render in (("base", pair.base_render), ("anti-aesthetic", pair.anti_render)):
            sha = render["image_sha256"]
            if sha and images.has(sha):
                try:
                    shown.append(f'<img alt="{label} image" src="{_png_data_uri(images.read(sha))}">')
                except ImageDamaged:
                    shown.append(
                        f"<p class=muted>{label} image {sha[:12]} is damaged (see <code>widespec verify</code>)</p>"
                    )
        parts.append(
            f"<figure class=pair data-outcome={outcome}>{''.join(shown)}<figcaption><b>base:</b> "
            f"{_e(pair.base['text'])}<br><b>anti:</b> {_e(pair.variant['text'])}<br><span class=muted>"
            f"{_e(', '.join(pair.variant['dimensions']))} · {_e(pair.variant['intensity'])} · {_e(pair.generator)} "
            f"· seed {pair.seed} · {outcome}</span></figcaption></figure>"
        )
    if not data.gallery:
        parts.append("<p class=muted>No complete pairs yet: run <code>widespec generate</code>.</p>")
    parts.append("</div></body></html>")
    return "".join(parts)


def write_report(ws: Workspace, output: Path | None = None) -> Path:
    """Write the workspace's report (default: reports/report.html) atomically and return its path."""
    target = output or ws.reports_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    from curation.app.report_audit import stored_audits

    audits = stored_audits(ws) if ws.store.count("audit") else []
    judge = None
    if ws.settings.judge.configured:
        from curation.judge.report import judge_report

        judge = judge_report(ws)
    title = f"widespec report: {ws.settings.project.name}"
    data = gather(ws.store, scorer, mode=ws.settings.export.rows, judge=configured_judge(ws))
    text = render_html(data, ws.images, title, audits, judge)
    write_atomic(target, text)
    return target
