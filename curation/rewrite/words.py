"""Words in any script: counting, content words and comparison for the rewrite checks.

Scripts written without spaces between words (Chinese, Japanese kana and kanji) count one word per character;
every other script counts runs of letters and digits, so a Cyrillic, Greek or Arabic rewrite is measured like an
English one. Content words are case-folded, with the stopwords of English left out and long words cut to a
five-letter stem, so "blurry" and "blurred" meet.
"""

from __future__ import annotations

import re
import unicodedata

import regex

from curation.core.english import ENGLISH_STOPWORDS

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"  # scripts written without spaces between words
_LETTER = rf"(?:(?![{_CJK}])[\p{{L}}\p{{N}}]\p{{M}}*)"  # a letter or digit of any other script, with its marks
# A word: letters and digits (Devanagari vowel signs and Arabic harakat included) joined by apostrophes or
# hyphens; or a single CJK character.
_TOKEN = regex.compile(rf"[{_CJK}]|{_LETTER}+(?:['\u2019-]{_LETTER}+)*")
_CJK_CHAR = regex.compile(rf"[{_CJK}]")
_ASCII_TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")  # `_TOKEN` on ASCII text
STEM = 5

_STOPWORDS = ENGLISH_STOPWORDS


def tokens(text: str) -> list[str]:
    """The words of `text`, case-folded: one per CJK character, else one per run of letters and digits."""
    if text.isascii():  # most prompts: the same words, found seven times faster
        return _ASCII_TOKEN.findall(text.lower())
    return _TOKEN.findall(unicodedata.normalize("NFC", text).casefold())


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (CJK characters all do; elsewhere no stopword, no word of 1-2 letters)."""
    return content_of(tokens(text))


def content_of(words: list[str]) -> set[str]:
    """`content_words` of already tokenised text."""
    found = set()
    for token in words:
        if len(token) > 2:
            if token not in _STOPWORDS:
                found.add(token[:STEM])
        elif len(token) == 1 and not token.isascii() and _CJK_CHAR.fullmatch(token):  # CJK words are one character
            found.add(token)
    return found
