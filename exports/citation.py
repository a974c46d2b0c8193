"""How to cite a release: `CITATION.cff` (Citation File Format 1.2.0) and the card's BibTeX, both from the same
facts (title, version, license, authors, the research it serves)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

# Hugging Face card license ids -> SPDX ids (CITATION.cff's `license` takes SPDX only; others are left out).
SPDX = {
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cc0-1.0": "CC0-1.0",
    "apache-2.0": "Apache-2.0",
    "mit": "MIT",
}
PAPER_TITLE = "Position: Universal Aesthetic Alignment Narrows Artistic Expression"
PAPER_ARXIV = "2512.11883"
PAPER_AUTHORS = (("Wenqi Marshall", "Guo"), ("Qingyun", "Qian"), ("Khalad", "Hasan"), ("Shan", "Du"))  # given, family
PAPER_VENUE = "Proceedings of the 43rd International Conference on Machine Learning (ICML 2026)"
PAPER_YEAR = 2026


@dataclass(frozen=True)
class Citation:
    title: str
    version: str
    license: str
    authors: tuple[str, ...]
    repository: str | None = None

    @property
    def key(self) -> str:
        stem = "".join(c if c.isalnum() else "_" for c in self.title.lower()).strip("_")
        return f"{stem}_v{self.version.replace('.', '_')}"

    @property
    def author_names(self) -> tuple[str, ...]:
        return self.authors or (f"{self.title} curators",)


def citation_cff(citation: Citation) -> str:
    """CITATION.cff text: the dataset version, citing the paper in `references`."""
    document = {
        "cff-version": "1.2.0",
        "message": "If you use this dataset, please cite it as below.",
        "type": "dataset",
        "title": citation.title,
        "version": citation.version,
        **({"license": SPDX[citation.license]} if citation.license in SPDX else {}),
        "authors": [{"name": name} for name in citation.author_names],
        **({"repository": citation.repository} if citation.repository else {}),
        "references": [
            {
                "type": "conference-paper",
                "title": PAPER_TITLE,
                "authors": [{"given-names": given, "family-names": family} for given, family in PAPER_AUTHORS],
                "collection-title": PAPER_VENUE,
                "year": PAPER_YEAR,
                "identifiers": [{"type": "other", "value": f"arXiv:{PAPER_ARXIV}"}],
                "url": f"https://arxiv.org/abs/{PAPER_ARXIV}",
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def bibtex(citation: Citation) -> str:
    """Two BibTeX entries: the dataset version and the paper."""
    authors = " and ".join(f"{{{name}}}" for name in citation.author_names)
    return "\n".join(
        [
            f"@misc{{{citation.key},",
            f"  title = {{{citation.title}}},",
            f"  author = {authors},",
            f"  version = {{{citation.version}}},",
            f"  note = {{Dataset version {citation.version}, license {citation.license}; built with widespec}},",
            *([f"  howpublished = {{\\url{{{citation.repository}}}}},"] if citation.repository else []),
            "}",
            "",
            f"@inproceedings{{arxiv_{PAPER_ARXIV.replace('.', '_')},",
            f"  title = {{{PAPER_TITLE}}},",
            f"  author = {{{' and '.join(f'{family}, {given}' for given, family in PAPER_AUTHORS)}}},",
            f"  booktitle = {{{PAPER_VENUE}}},",
            f"  year = {{{PAPER_YEAR}}},",
            f"  eprint = {{{PAPER_ARXIV}}},",
            "  archivePrefix = {arXiv},",
            f"  url = {{https://arxiv.org/abs/{PAPER_ARXIV}}},",
            "}",
        ]
    )
