"""The safety screen for base prompts and variants: content this dataset must never produce.

Built-in rules stop sexual content involving minors, sexual violence and sexualised real people. Extra
terms from the config (`rewriter.safety_terms`) block on a whole-word match. Disturbing but legitimate
material (decay, dread, grief, the grotesque) is what the dataset is for and passes. The screen is pure;
callers record a hit as status `blocked` with the rule's name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def _words(*terms: str) -> str:
    return r"\b(?:" + "|".join(terms) + r")\b"


_SEXUAL = _words(
    r"sex(?:ual(?:ly|ised|ized)?|y)?",
    r"nude|nudity|naked|topless|undress(?:ed|ing)?|strip(?:ping|tease)",
    r"erotic(?:a|ally)?|porn(?:ographic|ography)?|nsfw|explicit|lewd|hentai|fetish",
    r"seductive(?:ly)?|provocative(?:ly)?|lingerie|aroused|orgasm\w*|genital\w*|intercourse",
)
_MINOR = _words(
    r"child(?:ren)?|kids?|minors?|under-?age|teen(?:s|age|ager|agers)?|pre-?teens?|loli\w*|shota",
    r"toddlers?|bab(?:y|ies)|infants?|school ?(?:girl|boy)s?|little (?:girl|boy)s?|young (?:girl|boy)s?",
    r"(?:[1-9]|1[0-7])[- ]?(?:years?[- ]old|yo)",
)
_SEXUAL_VIOLENCE = _words(
    r"rap(?:e|ed|es|ing|ist)",
    r"sexual(?:ly)? (?:assault\w*|abuse\w*|violence)",
    r"molest\w*|non-?consensual|forced (?:sex|intercourse)|sex slave\w*",
)
_REAL_PERSON = _words(
    r"celebrit(?:y|ies)|famous|actress|actor|singer|popstar|pop star|politician|president|prime minister",
    r"influencer|royal|princess|prince|queen|king|real person|real people",
)
# Two or more capitalised words that do not open the text: how a named person usually appears in a prompt.
_PERSONAL_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")


@dataclass(frozen=True)
class SafetyRule:
    name: str
    description: str


RULES = {
    "minors_sexual": SafetyRule("minors_sexual", "sexual content involving minors"),
    "sexual_violence": SafetyRule("sexual_violence", "sexual violence"),
    "sexualised_real_person": SafetyRule("sexualised_real_person", "sexualised depiction of a real person"),
}


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


class SafetyScreen:
    """Checks texts against the built-in rules and the configured extra terms."""

    def __init__(self, extra_terms: Iterable[str] = ()) -> None:
        terms = sorted({t.strip() for t in extra_terms if t.strip()}, key=len, reverse=True)
        self._extra = re.compile(_words(*map(re.escape, terms)), re.IGNORECASE) if terms else None

    def check(self, text: str) -> str | None:
        """The name of the first rule the text breaks, or None when it passes."""
        if _found(_SEXUAL_VIOLENCE, text):
            return "sexual_violence"
        if _found(_SEXUAL, text):
            if _found(_MINOR, text):
                return "minors_sexual"
            if _found(_REAL_PERSON, text) or _PERSONAL_NAME.search(text):
                return "sexualised_real_person"
        if self._extra is not None:
            match = self._extra.search(text)
            if match:
                return f"term:{match.group(0).lower()}"
        return None
