"""Words in any script: counting, content words and comparison for the rewrite checks.

Scripts written without spaces between words (Chinese, Japanese kana and kanji) count one word per character;
every other script counts runs of letters and digits, so a Cyrillic, Greek or Arabic rewrite is measured like an
English one. Content words are case-folded, with the stopwords of English left out and long words cut to a
five-letter stem, so "blurry" and "blurred" meet.
"""

from __future__ import annotations

import unicodedata

import regex

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"  # scripts written without spaces between words
_LETTER = rf"(?:(?![{_CJK}])[\p{{L}}\p{{N}}]\p{{M}}*)"  # a letter or digit of any other script, with its marks
# A word: letters and digits (Devanagari vowel signs and Arabic harakat included) joined by apostrophes or
# hyphens; or a single CJK character.
_TOKEN = regex.compile(rf"[{_CJK}]|{_LETTER}+(?:['\u2019-]{_LETTER}+)*")
_CJK_CHAR = regex.compile(rf"[{_CJK}]")
STEM = 5

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "on",
        "in",
        "at",
        "to",
        "with",
        "by",
        "for",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "near",
        "its",
        "his",
        "her",
        "their",
        "this",
        "that",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "as",
        "it",
        "some",
        "two",
        "three",
        "while",
        "who",
        "which",
        "very",
    ]
)


def tokens(text: str) -> list[str]:
    """The words of `text`, case-folded: one per CJK character, else one per run of letters and digits."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())


def word_count(text: str) -> int:
    return len(tokens(text))


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (CJK characters all do; elsewhere no stopword, no word of 1-2 letters)."""
    found = set()
    for token in tokens(text):
        if _CJK_CHAR.fullmatch(token):
            found.add(token)
        elif len(token) > 2 and token not in _STOPWORDS:
            found.add(token[:STEM])
    return found


def same_text(a: str, b: str) -> bool:
    """Whether two texts are the same words in the same order, whatever their case, spacing and punctuation."""
    return tokens(a) == tokens(b)
