"""`croissant.json`: the release described in MLCommons Croissant 1.0 with its Responsible-AI fields, from the
same facts as the card (CardInputs) and the configs' own `datasets` features.

Every config is a FileSet of its parquet shards and a RecordSet whose fields follow its features: text, integer,
float and boolean columns, lists (`repeated`), structs (`subField`) and images (`sc:ImageObject`, the PNG bytes
of the column's struct).
"""

from __future__ import annotations

import json
from typing import Any

from datasets import Features, Image, LargeList, List, Sequence, Value

from exports.card import CardInputs, citation_of, generator_license, human_curated, pretty_name
from exports.citation import bibtex
from exports.languages import language_statement

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
LICENSE_URLS = {
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-nc-sa-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0",
    "mit": "https://opensource.org/licenses/MIT",
}
DATA_TYPES = {"string": "sc:Text", "bool": "sc:Boolean", "float64": "sc:Float", "float32": "sc:Float"}


def _data_type(value: Value) -> str:
    if value.dtype in DATA_TYPES:
        return DATA_TYPES[value.dtype]
    if value.dtype.startswith(("int", "uint")):
        return "sc:Integer"
    raise ValueError(f"no Croissant data type for {value.dtype}")


def _field(record_set: str, file_set: str, name: str, feature: Any, column: str | None = None) -> dict[str, Any]:
    """The Croissant field of one column (or sub-field of a struct column, read through `column`)."""
    field_id = f"{record_set}/{name}"
    source: dict[str, Any] = {"fileSet": {"@id": file_set}, "extract": {"column": column or name}}
    entry: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": field_id}
    if isinstance(feature, Image):
        return {**entry, "dataType": "sc:ImageObject", "source": {**source, "transform": {"jsonPath": "bytes"}}}
    if isinstance(feature, List | LargeList | Sequence):
        inner = feature.feature
        return {**entry, "dataType": _data_type(inner), "repeated": True, "source": source}
    if isinstance(feature, dict):
        sub = [
            {
                "@type": "cr:Field",
                "@id": f"{field_id}/{key}",
                "name": f"{field_id}/{key}",
                "dataType": _data_type(value),
                "source": {**source, "transform": {"jsonPath": key}},
            }
            for key, value in feature.items()
        ]
        return {**entry, "subField": sub}
    return {**entry, "dataType": _data_type(feature), "source": source}


def _rai(inputs: CardInputs) -> dict[str, Any]:
    """The Responsible-AI fields, claiming human curation and annotation only where a human round decided rows."""
    stats = inputs.configs[0].stats
    human = human_curated(stats)
    generators = ", ".join(
        f"{model} (license {generator_license(inputs, model)})" for model in sorted(stats.generator_info)
    )
    rounds = sorted(stats.round_pairs)
    placed = ", ".join(
        f"{stats.deciders[name]} by {name}" for name in ("human", "judge", "clip") if stats.deciders[name]
    )
    protocol = (
        "Pairs were scored with CLIP (fidelity, content kept, direction, probes) and filtered by thresholds; "
        + (
            f"human rounds ({', '.join(map(str, rounds))}) asked which image follows the anti-aesthetic prompt "
            "better (A/B/tie, order randomised), with majority verdicts and their agreement per pair. "
            if human
            else "no human round decided these rows. "
        )
        + f"Rows placed (decided_by): {placed}."
    )
    biases = "CLIP metrics carry CLIP's biases and filter the rows"
    biases += "; human verdicts come from a small annotator pool." if human else "."
    return {
        "rai:dataCollection": "Base prompts were imported and rewritten into anti-aesthetic variants along a versioned "
        f"taxonomy ({'; '.join(sorted(stats.rewriters)) or 'no rewriter recorded'}); each pair's base and anti image "
        f"were generated with the same model, seed and settings by: {generators}. Images are synthetic.",
        "rai:dataCollectionType": (["Manual Human Curation"] if human else []) + ["Machine generated"],
        "rai:dataAnnotationProtocol": protocol,
        **(
            {
                "rai:dataAnnotationPlatform": ["Label Studio"],
                "rai:annotatorDemographics": list(inputs.export.annotator_demographics) or ["not collected"],
            }
            if human
            else {}
        ),
        "rai:machineAnnotationTools": sorted(stats.scorers),
        "rai:dataUseCases": [
            "Measuring whether text-to-image generators follow anti-aesthetic prompts.",
            "Auditing reward models for penalising images that follow anti-aesthetic prompts (arXiv 2512.11883).",
            "Preference (Diffusion-DPO) and supervised fine-tuning towards following such prompts.",
            "Out of scope: judging image quality, aesthetics or artistic merit; any use the generators' licenses forbid.",
        ],
        "rai:dataBiases": [
            language_statement(stats.languages)
            + " Dimensions come from one taxonomy and do not cover every anti-aesthetic.",
            biases,
        ],
        "rai:dataLimitations": [
            "Images are unpleasant by design (distorted, dark, creepy, decaying) and may contain unexpected content.",
        ],
        "rai:personalSensitiveInformation": [
            "None collected: images are generated"
            + ("; annotators are recorded by pseudonymous account only." if human else "."),
        ],
    }


def croissant(inputs: CardInputs, published: str) -> dict[str, Any]:
    """The Croissant JSON-LD document of a release exported on `published` (YYYY-MM-DD)."""
    citation = citation_of(inputs)
    file_sets, record_sets = [], []
    for summary in inputs.configs:
        file_set = f"parquet-{summary.name}"
        file_sets.append(
            {
                "@type": "cr:FileSet",
                "@id": file_set,
                "name": file_set,
                "description": f"Parquet shards of config {summary.name}.",
                "encodingFormat": "application/x-parquet",
                "includes": f"{summary.folder}/*.parquet",
            }
        )
        features: Features = summary.features
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": summary.name,
                "name": summary.name,
                "description": f"Config {summary.name}: {summary.stats.rows} rows.",
                "field": [_field(summary.name, file_set, name, feature) for name, feature in features.items()],
            }
        )
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": pretty_name(inputs),
        "description": "Prompt pairs (a base prompt and anti-aesthetic rewrites of it) with an image of each made by "
        "the same generator with the same seed and settings, "
        + ("CLIP scores and human verdicts." if human_curated(inputs.configs[0].stats) else "and CLIP scores."),
        "version": inputs.version,
        "datePublished": published,
        "license": LICENSE_URLS.get(inputs.license, inputs.license),
        "url": "https://arxiv.org/abs/2512.11883",
        "citeAs": bibtex(citation),
        "creator": [{"@type": "sc:Organization", "name": name} for name in citation.author_names],
        "keywords": list(inputs.export.tags),
        **_rai(inputs),
        "distribution": file_sets,
        "recordSet": record_sets,
    }


def croissant_json(inputs: CardInputs, published: str) -> str:
    return json.dumps(croissant(inputs, published), indent=2, ensure_ascii=False) + "\n"
