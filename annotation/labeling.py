"""What annotators see: the labeling config, task payloads and the seeded A/B order (pure, no I/O but the taxonomy).

A task shows the anti-aesthetic prompt, the base prompt and the pair's two images as A and B in a seeded order,
and asks: which image follows the prompt better (A / B / tie, keys 1 / 2 / 3); which of the requested qualities the chosen image
shows (the variant's dimensions, named from the taxonomy); whether the base subject is still recognisable; flags;
a comment. Answers are mapped back to anti / base with the same order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from curation.core.taxonomy import load_taxonomy
from curation.core.workspace import Workspace

AbOrder = Literal["anti_first", "base_first"]
CHOICE_ALIASES = {"A": "a", "B": "b", "Tie": "tie"}
FLAG_ALIASES = {"Unsafe": "unsafe", "Broken image": "broken_image"}
SUBJECT_ALIASES = {"Yes": "yes", "No": "no"}
QUESTIONS = {
    "choice": "Which image follows the prompt better?",
    "qualities": "Which of the requested qualities does the chosen image show?",
    "subject_kept": "Is the subject of the base prompt still recognisable?",
    "flags": "Flags",
    "comment": "Comment (optional)",
}


def dimension_names(ws: Workspace | None = None) -> dict[str, str]:
    """Dimension id → display name from the workspace's taxonomy (the built-in one by default)."""
    if ws is None:
        return {d.id: d.name for d in load_taxonomy("builtin:widespec-core").dimensions.values()}
    return {d.id: d.name for d in load_taxonomy(ws.settings.taxonomy.path, ws.root).dimensions.values()}


def ab_order(seed: int, round_number: int, pair_id: str) -> AbOrder:
    """Which image is shown as A: a fair coin seeded by the project seed, the round and the pair."""
    digest = hashlib.sha256(f"{seed}:{round_number}:{pair_id}".encode()).digest()
    return "anti_first" if digest[0] % 2 == 0 else "base_first"


# Keyboard answers: 1 / 2 / 3 pick A / B / tie, y / n the subject question; ctrl+enter submits (Label Studio's own).
HOTKEYS = {"choice": {"a": "1", "b": "2", "tie": "3"}, "subject_kept": {"yes": "y", "no": "n"}}


def _choices(name: str, aliases: dict[str, str], choice: str) -> str:
    keys = HOTKEYS.get(name, {})
    options = "".join(
        f"<Choice value={quoteattr(v)} alias={quoteattr(a)}"
        + (f" hotkey={quoteattr(keys[a])}" if a in keys else "")
        + "/>"
        for v, a in aliases.items()
    )
    return f'<Choices name="{name}" toName="image_a" choice="{choice}" showInline="true">{options}</Choices>'


def label_config() -> str:
    """The Label Studio labeling config of a round project (quality options come with each task)."""
    parts = [
        "<View>",
        '<Header value="Prompt"/>',
        '<Text name="prompt" value="$prompt"/>',
        '<Header value="Base prompt" size="6"/>',
        '<Text name="base_prompt" value="$base_prompt"/>',
        '<View style="display: flex; gap: 16px;">',
        '<View style="flex: 1;"><Header value="A"/><Image name="image_a" value="$image_a" maxWidth="100%"/></View>',
        '<View style="flex: 1;"><Header value="B"/><Image name="image_b" value="$image_b" maxWidth="100%"/></View>',
        "</View>",
        f"<Header value={quoteattr(QUESTIONS['choice'])}/>",
        _choices("choice", CHOICE_ALIASES, "single-radio").replace("<Choices ", '<Choices required="true" ', 1),
        f"<Header value={quoteattr(QUESTIONS['qualities'])}/>",
        '<Choices name="qualities" toName="image_a" choice="multiple" value="$qualities" showInline="true"/>',
        f"<Header value={quoteattr(QUESTIONS['subject_kept'])}/>",
        _choices("subject_kept", SUBJECT_ALIASES, "single-radio"),
        f"<Header value={quoteattr(QUESTIONS['flags'])}/>",
        _choices("flags", FLAG_ALIASES, "multiple"),
        f"<Header value={quoteattr(QUESTIONS['comment'])}/>",
        '<TextArea name="comment" toName="image_a" rows="2" maxSubmissions="1" editable="true"/>',
        "</View>",
    ]
    return "".join(parts)


def image_url(path: Path, docroot: Path) -> str:
    """The local-files URL of an image (an absolute, resolved path) under the server's document root."""
    return "/data/local-files/?d=" + quote(path.relative_to(docroot).as_posix())


IMAGE_FIELDS = ("image_a", "image_b")


def with_urls(payload: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """A task payload whose image fields hold sha256 values, with those replaced by the images' URLs."""
    return {**payload, **{field: urls[payload[field]] for field in IMAGE_FIELDS}}


def task_payload(
    pair_id: str,
    anti_prompt: str,
    base_prompt: str,
    anti_url: str,
    base_url: str,
    dimensions: list[str],
    names: dict[str, str],
    order: AbOrder,
) -> dict[str, Any]:
    """The task data of one pair; only the pair id ties it back (the order and gold status stay in widespec).
    The image fields hold whatever identifies the images: URLs, or sha256 values until they have URLs."""
    image_a, image_b = (anti_url, base_url) if order == "anti_first" else (base_url, anti_url)
    return {
        "pair_id": pair_id,
        "prompt": anti_prompt,
        "base_prompt": base_prompt,
        "image_a": image_a,
        "image_b": image_b,
        "qualities": [{"value": names.get(d, d)} for d in dimensions],
    }


def undo_order(answer: str | None, order: AbOrder) -> Literal["anti", "base", "tie"] | None:
    """Map an A / B / tie answer back to anti / base / tie."""
    if answer is None:
        return None
    if answer == "tie":
        return "tie"
    first, second = ("anti", "base") if order == "anti_first" else ("base", "anti")
    return first if answer == "a" else second  # type: ignore[return-value]


def parse_result(
    result: list[dict[str, Any]], order: AbOrder, dimensions: list[str], names: dict[str, str]
) -> dict[str, Any]:
    """One Label Studio annotation result → the answer fields of an annotation record."""
    values: dict[str, list[str] | str] = {}
    for region in result:
        value = region.get("value", {})
        if "choices" in value:
            values[region["from_name"]] = list(value["choices"])
        elif "text" in value:
            text = value["text"]
            values[region["from_name"]] = " ".join(text) if isinstance(text, list) else str(text)
    by_name = {names.get(d, d): d for d in dimensions}
    choice = values.get("choice") or []
    subject = values.get("subject_kept") or []
    comment = values.get("comment")
    return {
        "choice": undo_order(choice[0] if choice else None, order),
        "qualities": sorted(by_name[q] for q in values.get("qualities", []) if q in by_name),
        "subject_kept": subject[0] == "yes" if subject else None,
        "flags": sorted(f for f in values.get("flags", []) if f in FLAG_ALIASES.values()),
        "comment": comment.strip() or None if isinstance(comment, str) else None,
    }
