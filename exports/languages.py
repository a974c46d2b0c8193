"""What language a release's prompts are in, as far as a simple check can tell (pure).

No language detector ships with widespec, so the check is a documented heuristic: a prompt is English when every
letter in it is Latin script and it holds more common English function words ("the", "of", "with", …) than common
French, German, Spanish, Italian, Portuguese or Dutch ones, at least one. Anything else is `undetermined`: another
language, a mix, or too short to tell. The card and croissant.json say which rows passed and by what check, and
never call undetermined prompts English.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from curation.core.english import ENGLISH_STOPWORDS

ENGLISH = "en"
UNDETERMINED = "undetermined"
CHECK = "a word-list check: Latin letters only, and more common English than other-language function words"

# Common function words of the other languages the check tells apart from English.
OTHER_LANGUAGES = {
    "French": "le la les de des du un une et est dans sur avec pour pas que qui au aux",
    "German": "der die das und ist mit ein eine einem einer nicht auf dem von zu im",
    "Spanish": "el los las y con por para del una es lo al",
    "Italian": "il di che e gli della per non",
    "Portuguese": "uma um com não da do em os",
    "Dutch": "het een en van op te niet dat ook",
}
OTHER_WORDS = frozenset(word for words in OTHER_LANGUAGES.values() for word in words.split())
WORD = re.compile(r"[^\W\d_]+")


def _latin(word: str) -> bool:
    return all(unicodedata.name(char, "").startswith("LATIN") for char in word)


def prompt_language(text: str) -> str:
    """`en` when `text` passes the English check, else `undetermined`."""
    words = [word.lower() for word in WORD.findall(text)]
    if not words or not all(_latin(word) for word in words):
        return UNDETERMINED
    english = sum(word in ENGLISH_STOPWORDS for word in words)
    other = sum(word in OTHER_WORDS for word in words)
    return ENGLISH if english and english > other else UNDETERMINED


def row_language(base_prompt: str, anti_prompt: str) -> str:
    """`en` when both prompts of a row pass the English check, else `undetermined`."""
    both = {prompt_language(base_prompt), prompt_language(anti_prompt)}
    return ENGLISH if both == {ENGLISH} else UNDETERMINED


def language_statement(rows: Counter[str]) -> str:
    """One sentence on the prompts' language from rows counted by `row_language`, claiming only what was checked."""
    english, total = rows[ENGLISH], sum(rows.values())
    if total and english == total:
        return f"Prompts are English (detected: both prompts of all {total} rows pass {CHECK})."
    if english:
        return (
            f"Prompts are mostly English (detected: both prompts of {english} of {total} rows pass {CHECK}); the "
            f"language of the other {total - english} rows is undetermined (another language, or too short to tell)."
        )
    return (
        f"The prompts' language is undetermined: no row's prompts pass {CHECK} (another language, or too short to "
        "tell)."
    )
