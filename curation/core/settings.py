"""Typed sections of widespec.toml: what stages receive instead of `config["a"]["b"]` dicts.

Built from the resolved config (defaults overlaid and validated against schemas/config.schema.json), so every
field is present and of its schema type; a test holds the fields and the schema's keys equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal, Self, get_type_hints

from curation.core.config import Config


class Section:
    """A frozen dataclass built from one config table; arrays become tuples, tables copied dicts."""

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Self:
        assert is_dataclass(cls)
        return cls(**{f.name: _frozen(table[f.name], str(f.type)) for f in fields(cls)})


def _frozen(value: Any, kind: str = "") -> Any:
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # TOML writes `guidance = 7`; the field is a float all the same
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}  # a copy (a plain dict: sections are pickled to workers)
    return value


@dataclass(frozen=True)
class ProjectSettings(Section):
    name: str
    seed: int
    license: str


@dataclass(frozen=True)
class PromptSettings(Section):
    max_chars: int
    column: str
    hub_timeout_s: float


@dataclass(frozen=True)
class TaxonomySettings(Section):
    path: str


@dataclass(frozen=True)
class RewriterSettings(Section):
    kind: Literal["lexicon", "llm"]
    base_url: str
    model: str
    api_key_env: str
    temperature: float
    max_concurrency: int
    requests_per_minute: int
    tokens_per_minute: int
    timeout_s: float
    max_attempts: int
    variants_per_prompt: int
    dimensions_per_variant: tuple[int, int]
    intensities: tuple[str, ...]
    backoff_s: float
    max_backoff_s: float
    max_words: int
    batch_size: int
    prices: tuple[float, ...]
    safety_terms: tuple[str, ...]
    moderation_model: str


@dataclass(frozen=True)
class GeneratorSettings(Section):
    models: tuple[str, ...]
    steps: int
    guidance: float
    width: int
    height: int
    seeds_per_pair: int
    batch_size: int
    device: str
    dtype: Literal["auto", "float32", "float16", "bfloat16"]
    batch_mode: Literal["exact", "batched"]
    preset_settings: bool
    cpu_offload: bool
    compile: bool
    models_dir: str


@dataclass(frozen=True)
class ScorerSettings(Section):
    model: str
    pretrained: str
    device: str
    batch_size: int
    num_workers: int
    autocast: bool


@dataclass(frozen=True)
class AuditSettings(Section):
    models: Mapping[str, str]
    device: str
    batch_size: int
    bootstrap_rounds: int


@dataclass(frozen=True)
class FilterSettings(Section):
    min_fidelity: float
    min_content_kept: float
    min_direction: float
    min_probe: float
    review_margin: float
    min_text_distance: float
    max_variant_similarity: float
    calibration_min_verdicts: int
    calibration_min_auroc: float
    dimensions: Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class JudgeSettings(Section):
    base_url: str
    model: str
    revision: str
    api_key_env: str
    temperature: float
    max_concurrency: int
    requests_per_minute: int
    tokens_per_minute: int
    timeout_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    prices: tuple[float, ...]
    max_side: int
    image_format: Literal["png", "jpeg"]
    orders: Literal["both", "one"]
    batch_size: int
    min_kappa: float
    min_overlap: int
    bootstrap_rounds: int

    @property
    def configured(self) -> bool:
        """Whether a judge model is set (`widespec run` judges only then)."""
        return bool(self.model)


@dataclass(frozen=True)
class AnnotationSettings(Section):
    url: str
    token_env: str
    port: int
    overlap: int
    pairs_per_round: int
    gold_rate: float
    rejected_rate: float
    gold_min_agreement: float
    min_votes: int
    min_gold_accuracy: float
    min_gold_answers: int
    document_root: str
    server_venv: str
    upload_concurrency: int
    upload_batch: int


@dataclass(frozen=True)
class ExportSettings(Section):
    rows: Literal["human", "accepted", "judged"]
    max_shard_mb: int
    hard_negatives: bool
    training_configs: tuple[str, ...]
    pretty_name: str
    authors: tuple[str, ...]
    annotator_demographics: tuple[str, ...]
    task_categories: tuple[str, ...]
    tags: tuple[str, ...]
    gallery_size: int
    hub_timeout_s: float
    publish_deadline_s: float
    exclude_flags: tuple[str, ...]
    flag_min_votes: int


@dataclass(frozen=True)
class RunSettings(Section):
    annotate: bool
    export: bool
    version_bump: Literal["minor", "patch"]


@dataclass(frozen=True)
class ExecutorSettings(Section):
    kind: Literal["local", "ray"]
    address: str
    workers: int
    gpus_per_worker: float
    cpus_per_worker: float
    cpu_threads: int
    batch_size: int
    connect_timeout_s: float


@dataclass(frozen=True)
class Settings:
    """Every section of a resolved widespec.toml, typed."""

    project: ProjectSettings
    prompts: PromptSettings
    taxonomy: TaxonomySettings
    rewriter: RewriterSettings
    generator: GeneratorSettings
    scorer: ScorerSettings
    filter: FilterSettings
    judge: JudgeSettings
    annotation: AnnotationSettings
    export: ExportSettings
    audit: AuditSettings
    executor: ExecutorSettings
    run: RunSettings

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        sections: dict[str, Any] = {name: section.from_table(config[name]) for name, section in SECTION_TYPES.items()}
        return cls(**sections)


# Each section's dataclass, read off the annotations of `Settings` (one list of sections, not two).
SECTION_TYPES: dict[str, type[Section]] = get_type_hints(Settings)
