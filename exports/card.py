"""The dataset card: YAML metadata from huggingface_hub / datasets objects, a markdown body, metric plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from datasets import DatasetInfo, Features, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from curation.core.model_licenses import UNKNOWN
from curation.core.settings import ExportSettings
from curation.core.verdicts import RoundAgreement
from exports.citation import Citation, bibtex
from exports.diff import CONFIG_DIRECTORIES
from exports.languages import ENGLISH, language_statement
from exports.rows import CORE_METRICS
from exports.stats import ExportStats, size_category
from exports.writer import FEATURES

BUILTIN_PREFIX = "builtin:"
PLOTS_DIR = "plots"
GALLERY_DIR = "gallery"
METRIC_TEXT = {
    "fidelity": "cos(anti image, anti prompt): does the anti image show what the anti prompt asks for",
    "content_kept": "cos(anti image, base prompt): is the base subject still there",
    "direction": "cos(anti image, anti prompt) − cos(base image, anti prompt): does the anti image follow the anti "
    "prompt better than the base image",
}


@dataclass
class ConfigSummary:
    """One config of the release (`default`, `hard_negatives`, `preference`, `sft`): its rows' statistics, shard
    sizes, features and folder."""

    name: str
    stats: ExportStats
    num_bytes: int
    shards: int
    features: Features = field(default_factory=lambda: FEATURES)
    directory: str = ""

    @property
    def folder(self) -> str:
        return self.directory or CONFIG_DIRECTORIES[self.name]


@dataclass
class CardInputs:
    project: str
    version: str
    parent: str | None
    license: str
    rows_mode: str
    export: ExportSettings
    configs: list[ConfigSummary]
    changelog: list[tuple[str, str]]  # (version, entry), newest first
    gallery: list[dict[str, Any]] = field(default_factory=list)  # {"id", "anti_prompt", "base", "anti"} paths
    plots: list[str] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)  # pairs left out of the release, by reason
    sections: list[str] = field(default_factory=list)  # markdown sections of attached files (an audit)
    license_mix: list[str] = field(default_factory=list)  # generator terms the dataset license exceeds, accepted
    generator_licenses: dict[str, str] = field(default_factory=dict)  # model -> license id, `unknown` where none
    judge: str | None = None  # the configured judge and how it stands against humans, in words
    rounds: list[RoundAgreement] = field(default_factory=list)  # every resolved human round's alpha


# What each `export.rows` mode selects, as the card says it.
SELECTION = {
    "human": "only pairs a human round accepted",
    "accepted": "pairs a human round accepted, plus pairs the CLIP filter accepted where no round has decided",
    "judged": "pairs a human round accepted, plus pairs the VLM judge accepted (in every A/B order) where no round "
    "has decided and the CLIP filter did not reject them",
}


def license_notes() -> dict[str, str]:
    text = resources.files("exports").joinpath("data/generator_licenses.json").read_text(encoding="utf-8")
    notes: dict[str, str] = json.loads(text)
    return notes


def generator_license(inputs: CardInputs, model: str) -> str:
    """A released generator's license id, `unknown` where none is known."""
    return inputs.generator_licenses.get(model) or UNKNOWN


def human_curated(stats: ExportStats) -> bool:
    """Whether a human round decided any row of the release (`decided_by = "human"`)."""
    return stats.deciders["human"] > 0


def pretty_name(inputs: CardInputs) -> str:
    return inputs.export.pretty_name or f"{inputs.project} (wide-spectrum aesthetics)"


def uses_builtin_models(stats: ExportStats) -> bool:
    """True when any generator or scorer is one of widespec's random-weight built-in test models."""
    return any(g.startswith(BUILTIN_PREFIX) for g in stats.generators) or any(
        s.startswith(BUILTIN_PREFIX) for s in stats.scorers
    )


def card_data(inputs: CardInputs) -> DatasetCardData:
    """The YAML header: license, tasks, tags, name, size, configs and dataset_info (features, splits, sizes)."""
    default = inputs.configs[0]
    data = DatasetCardData(
        license=inputs.license,
        task_categories=list(inputs.export.task_categories),
        tags=list(inputs.export.tags),
        pretty_name=pretty_name(inputs),
        size_categories=[size_category(default.stats.rows)],
        language=[ENGLISH] if default.stats.languages[ENGLISH] else None,
    )
    MetadataConfigs(
        {
            summary.name: {
                "data_files": [{"split": "train", "path": f"{summary.folder}/train-*"}],
                **({"default": True} if summary.name == "default" else {}),
            }
            for summary in inputs.configs
        }
    ).to_dataset_card_data(data)
    infos = DatasetInfosDict()
    for summary in inputs.configs:
        splits = SplitDict()
        splits.add(SplitInfo(name="train", num_bytes=summary.num_bytes, num_examples=summary.stats.rows))
        infos[summary.name] = DatasetInfo(
            features=summary.features,
            splits=splits,
            download_size=summary.num_bytes,
            dataset_size=summary.num_bytes,
        )
    infos.to_dataset_card_data(data)
    return data


def _table(header: tuple[str, str], counts: dict[str, int]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | ---: |"]
    lines += [f"| {key} | {value} |" for key, value in sorted(counts.items())]
    return "\n".join(lines)


def _truncation(stats: ExportStats) -> str:
    """How many rows' prompts were longer than the scorer's text context (their metrics read the first part)."""
    parts = [
        f"{stats.truncated_prompts[prompt]} of {stats.counted_prompts[prompt]} `{prompt}` texts"
        for prompt in ("anti_prompt", "base_prompt")
        if stats.counted_prompts[prompt]
    ]
    return (
        " and ".join(parts) + " were longer than the scorer's text context and were cut to fit; their CLIP metrics "
        "read only the first part (each row's provenance holds its `text_tokens`)"
    )


def _how_built(inputs: CardInputs, stats: ExportStats) -> str:
    notes = license_notes()
    lines = ["## How it was built", ""]
    for name, version, digest in sorted(stats.taxonomies):
        lines.append(f"- **Taxonomy**: `{name}` version {version} (sha256 `{digest[:16]}…`).")
    lines.append("- **Rewriter**: " + "; ".join(sorted(stats.rewriters)) + ".")
    lines.append("- **Generators** (base and anti image of a pair share model, seed, steps, guidance and size):")
    for model, info in sorted(stats.generator_info.items()):
        license_id = generator_license(inputs, model)
        revision = f" at revision `{info['revision']}`" if info.get("revision") else ""
        if model.startswith(BUILTIN_PREFIX):
            note = notes["builtin"]
        elif license_id == UNKNOWN:
            note = (
                "no license is known for this model (neither a known Hub id nor `license:` in its model card): "
                "find its terms before using or redistributing its images."
            )
        else:
            note = notes.get(license_id, f"read the `{license_id}` license for what it says about generated images.")
        lines.append(f"  - `{model}`{revision}, {stats.generators[model]} pairs; license `{license_id}`: {note}")
    if inputs.license_mix:
        lines.append(
            f"- **License mix accepted by the curator** (`--accept-license-mix`): the dataset license `{inputs.license}` "
            "may grant more than these generators allow for their images; their terms still bind every use: "
            + "; ".join(inputs.license_mix)
            + "."
        )
    lines.append("- **Scorer** (open_clip): " + (", ".join(f"`{s}`" for s in sorted(stats.scorers)) or "none") + ".")
    if stats.counted_prompts:
        lines.append("- **Text context**: " + _truncation(stats) + ".")
    for stage, values in sorted(stats.thresholds.items()):
        lines.append(f"- **Thresholds at stage {stage}**: " + "; ".join(f"`{v}`" for v in sorted(values)) + ".")
    mode = SELECTION[inputs.rows_mode]
    lines.append(f'- **Selection** (`export.rows = "{inputs.rows_mode}"`): {mode}.')
    deciders = ", ".join(
        f"{stats.deciders[name]} by {name}" for name in ("human", "judge", "clip") if stats.deciders[name]
    )
    if deciders:
        lines.append(f"- **Who placed the rows** (`decided_by`): {deciders}.")
    if stats.deciders["judge"]:
        lines.append(
            f'- **Rows resting on the judge alone**: {stats.deciders["judge"]} (`decided_by = "judge"`: no human '
            "round decided them; the VLM judge picked the anti-aesthetic image in every order it was shown)."
        )
    if inputs.judge is not None:
        lines.append(f"- **VLM judge**: {inputs.judge}.")
    if inputs.excluded:
        left = "; ".join(f"{count} pairs {reason}" for reason, count in inputs.excluded.items())
        lines.append(f"- **Left out of this release**: {left}.")
    if human_curated(stats):
        lines.append(_human_rounds(inputs.rounds, stats))
    else:
        lines.append(
            "- **Human rounds**: No human round decided the rows of this release; `verdict`, `votes` and "
            "`agreement` are null in every row."
        )
    lines.append(f"- **Prompt language**: {language_statement(stats.languages)}")
    return "\n".join(lines)


def _human_rounds(rounds: list[RoundAgreement], stats: ExportStats) -> str:
    """Alpha per round over every pair it asked; the winning-vote share of this release's rows only as what it is."""
    lines = [
        "- **Human rounds** (Krippendorff's alpha per question, nominal, over every pair the round asked, with its "
        "bootstrap 95% interval over pairs; rows here = rows whose latest verdict is from the round; winning-vote "
        "share = mean share of votes for the winning label over those rows, high by construction, not agreement):"
    ]
    share = stats.mean_agreement()
    figures = {r.round: r for r in rounds}
    for number in sorted(set(figures) | set(stats.round_pairs)):
        found = figures.get(number)
        asked = f"{found.pairs} pairs asked, " if found else ""
        alpha = f"alpha {found.describe()}" if found else "alpha n/a"
        mean = f"; mean winning-vote share {share[number]:.3f}" if number in share else ""
        lines.append(f"  - round {number}: {asked}{stats.round_pairs[number]} rows here; {alpha}{mean}")
    return "\n".join(lines)


def _metrics_section(stats: ExportStats, plots: list[str]) -> str:
    lines = ["## CLIP metrics", ""]
    for metric in CORE_METRICS:
        values = stats.metrics[metric]
        summary = (
            f"mean {sum(values) / len(values):.4f}, min {min(values):.4f}, max {max(values):.4f}" if values else "none"
        )
        lines.append(f"- `{metric}` — {METRIC_TEXT[metric]}: {summary}; missing {stats.missing_metrics[metric]}.")
    lines.append("")
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines)


def _gallery(inputs: CardInputs) -> str:
    if not inputs.gallery:
        return ""
    lines = ["## Examples", "", "| anti prompt | base image | anti image |", "| --- | --- | --- |"]
    for item in inputs.gallery:
        prompt = item["anti_prompt"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {prompt} | ![base]({item['base']}) | ![anti]({item['anti']}) |")
    return "\n".join(lines)


LOADED_AS = {"hard_negatives": "negatives", "preference": "preference", "sft": "sft"}


def _training(inputs: CardInputs) -> list[str]:
    """How to train on the release's `preference` and `sft` configs (only those it has)."""
    names = {c.name: c for c in inputs.configs}
    lines: list[str] = []
    if "preference" in names:
        rows = names["preference"].stats.rows
        lines += [
            "## Training on it: preference pairs",
            "",
            f"Config `preference` ({rows} rows): one row per decided pair under its anti-aesthetic `prompt`, "
            "with the `chosen` and `rejected` image, `chosen_is_anti`, who decided (`source`: human, judge or clip; "
            "clip rows are the CLIP filter's call, weaker evidence than a human's), `votes` and `agreement`. Ties are "
            "left out. Diffusion-DPO-style trainers read Pick-a-Pic's layout; map the columns:",
            "",
            "```python",
            'pairs = load_dataset("OWNER/NAME", "preference", split="train", revision="v' + inputs.version + '")',
            'pairs = pairs.rename_columns({"prompt": "caption", "chosen": "jpg_0", "rejected": "jpg_1"})',
            'pairs = pairs.add_column("label_0", [1.0] * len(pairs))  # jpg_0 is the preferred image',
            "```",
            "",
        ]
    if "sft" in names:
        rows = names["sft"].stats.rows
        lines += [
            "## Training on it: image and caption",
            "",
            f"Config `sft` ({rows} rows): the anti-aesthetic `image` and its prompt as `text`, for the release's "
            "accepted rows; diffusers' text-to-image LoRA script reads it as it is:",
            "",
            "```bash",
            "accelerate launch train_text_to_image_lora.py --pretrained_model_name_or_path=MODEL \\",
            "  --dataset_name=OWNER/NAME --dataset_config_name=sft --image_column=image --caption_column=text \\",
            "  --resolution=1024 --output_dir=anti-aesthetic-lora",
            "```",
            "",
        ]
    return lines


def card_body(inputs: CardInputs) -> str:
    default = inputs.configs[0]
    stats = default.stats
    title = pretty_name(inputs)
    sections = [f"# {title} v{inputs.version}", ""]
    if uses_builtin_models(stats):
        sections += [
            "> **Test data, not research data.** The images and/or CLIP scores in this release come from widespec's "
            "built-in random-weight test models (`builtin:` ids). They are noise, made only to exercise the "
            "pipeline; do not draw conclusions from them.",
            "",
        ]
    sections += [
        "## What this dataset is for",
        "",
        "Pairs of text-to-image prompts — a plain base prompt and an *anti-aesthetic* rewrite of it (deliberately "
        "blurry, ugly, unsettling, badly lit, …) — each with an image of both made by the same generator with the same "
        "seed and settings. It measures whether image generators and reward models follow requests for "
        "anti-aesthetic images instead of steering everything towards one notion of beauty "
        "(arXiv 2512.11883), and can train models that do.",
        "",
        "## Content warning",
        "",
        "By design many images and prompts are unpleasant: distorted, dark, creepy, decaying, disgusting or "
        "distressing. Generated images can also contain unexpected or unsafe content.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("OWNER/NAME", revision="v{inputs.version}")',
        *(
            f'{name} = load_dataset("OWNER/NAME", "{config}", revision="v{inputs.version}")'
            for config, name in LOADED_AS.items()
            if any(c.name == config for c in inputs.configs)
        ),
        "```",
        "",
        "Columns: " + ", ".join(f"`{name}`" for name in FEATURES) + ". `probe` holds one CLIP probe score per entry "
        "of `dimensions`; `provenance` is JSON; metrics and verdicts are null where not measured, never 0.",
        "",
        _how_built(inputs, stats),
        "",
        *_training(inputs),
        "## Contents",
        "",
    ]
    for summary in inputs.configs:
        sections.append(f"- config `{summary.name}`: {summary.stats.rows} rows in {summary.shards} shard(s)")
    sections += [
        "",
        _table(("dimension", "pairs"), dict(stats.dimensions)),
        "",
        _table(("intensity", "pairs"), dict(stats.intensities)),
        "",
        _table(("human verdict", "pairs"), dict(stats.verdicts)),
        "",
        _metrics_section(stats, inputs.plots),
        "",
        _gallery(inputs),
        "",
        *(line for section in inputs.sections for line in (section, "")),
        "## Changelog",
        "",
    ]
    for version, entry in inputs.changelog:
        sections += [f"### v{version}", "", entry, ""]
    sections += [
        "## Limitations",
        "",
        "- CLIP metrics are automatic measurements with known biases; they filter pairs but are not ground truth.",
        (
            "- Human verdicts come from a small pool of annotators; Krippendorff's alpha is reported per round."
            if human_curated(stats)
            else "- No human judged these rows: they rest on automatic measurements and checks alone."
        ),
        f"- {language_statement(stats.languages)}",
        "- Dimensions come from one versioned taxonomy and do not cover every anti-aesthetic.",
        "- Images carry the licenses of their generators (see above).",
        "",
        "## Citation",
        "",
        "```bibtex",
        bibtex(citation_of(inputs)),
        "```",
        "",
        "The same as `CITATION.cff` in this folder.",
        "",
    ]
    return "\n".join(sections)


def citation_of(inputs: CardInputs) -> Citation:
    return Citation(pretty_name(inputs), inputs.version, inputs.license, tuple(inputs.export.authors))


def build_card(inputs: CardInputs) -> DatasetCard:
    """The full card: YAML header from card data, then the body."""
    return DatasetCard(f"---\n{card_data(inputs).to_yaml()}\n---\n\n{card_body(inputs)}")


def write_histograms(stats: ExportStats, folder: Path) -> list[str]:
    """One PNG histogram per CLIP metric in folder/plots/; returns their paths relative to folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    (folder / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    for metric in CORE_METRICS:
        values = list(stats.metrics[metric])
        fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
        if values:
            ax.hist(values, bins=30, color="#555555")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{metric} ({len(values)} pairs)")
        ax.set_xlabel(metric)
        ax.set_ylabel("pairs")
        fig.tight_layout()
        relative = f"{PLOTS_DIR}/{metric}.png"
        fig.savefig(folder / relative, format="png", metadata={"Software": None})
        plt.close(fig)
        paths.append(relative)
    return paths
