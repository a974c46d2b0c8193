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


class _Rule:
    """A built-in pattern, compiled twice: ignoring case (any text), and as is for lower-cased ASCII text.

    For ASCII text, ignoring case is exactly lower-casing, and Python's `re` matches a plain pattern several times
    faster than one with IGNORECASE; other text (where IGNORECASE also folds `ſ`, `ı`, `K`...) takes the first.
    """

    def __init__(self, pattern: str) -> None:
        self.any_text = re.compile(pattern, re.IGNORECASE)
        self.ascii_lower = re.compile(pattern)

    def found(self, text: str, lowered: str | None) -> bool:
        if lowered is None:
            return self.any_text.search(text) is not None
        return self.ascii_lower.search(lowered) is not None


_SEXUAL_VIOLENCE_RULE = _Rule(_SEXUAL_VIOLENCE)
_SEXUAL_RULE = _Rule(_SEXUAL)
_MINOR_RULE = _Rule(_MINOR)
_REAL_PERSON_RULE = _Rule(_REAL_PERSON)
_EITHER_RULE = _Rule(f"{_SEXUAL_VIOLENCE}|{_SEXUAL}")  # what most texts need: neither matches, one search


class SafetyScreen:
    """Checks texts against the built-in rules and the configured extra terms."""

    def __init__(self, extra_terms: Iterable[str] = ()) -> None:
        terms = sorted({t.strip() for t in extra_terms if t.strip()}, key=len, reverse=True)
        self._extra = re.compile(_words(*map(re.escape, terms)), re.IGNORECASE) if terms else None

    def check(self, text: str) -> str | None:
        """The name of the first rule the text breaks, or None when it passes."""
        lowered = text.lower() if text.isascii() else None
        if _EITHER_RULE.found(text, lowered):
            if _SEXUAL_VIOLENCE_RULE.found(text, lowered):
                return "sexual_violence"
            if _SEXUAL_RULE.found(text, lowered):
                if _MINOR_RULE.found(text, lowered):
                    return "minors_sexual"
                if _REAL_PERSON_RULE.found(text, lowered) or _PERSONAL_NAME.search(text):
                    return "sexualised_real_person"
        if self._extra is not None:
            match = self._extra.search(text)
            if match:
                return f"term:{match.group(0).lower()}"
        return None
