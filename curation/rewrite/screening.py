"""The safety screen as a pass runs it: built-in rules and extra terms, then the moderation endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curation.core.cache import ResponseCache
from curation.core.records import blocked_base_prompt
from curation.core.settings import RewriterSettings
from curation.rewrite.safety import SafetyScreen

if TYPE_CHECKING:  # the moderation module loads the openai client: imported only when it is configured
    from curation.rewrite.moderation import Moderator


@dataclass(frozen=True)
class ModerationSettings:
    base_url: str
    model: str
    api_key_env: str  # the key itself is read from the environment when the screen is built, never kept here
    timeout_s: float
    max_attempts: int


@dataclass(frozen=True)
class ScreenSettings:
    """What the screen checks: extra terms, and the moderation endpoint when one is configured."""

    safety_terms: tuple[str, ...] = ()
    moderation: ModerationSettings | None = None

    @classmethod
    def from_config(cls, section: RewriterSettings) -> ScreenSettings:
        moderation = None
        if section.moderation_model:
            moderation = ModerationSettings(
                section.base_url, section.moderation_model, section.api_key_env, section.timeout_s, section.max_attempts
            )
        return cls(section.safety_terms, moderation)


class Screen:
    """The pass's safety screen: built-in rules and extra terms, then the moderation endpoint if configured."""

    def __init__(self, rules: SafetyScreen, moderator: Moderator | None = None) -> None:
        self.rules, self.moderator = rules, moderator

    async def check(self, text: str) -> str | None:
        rule = self.rules.check(text)
        if rule is None and self.moderator is not None:
            rule = await self.moderator.check(text)
        return rule

    async def aclose(self) -> None:
        if self.moderator is not None:
            await self.moderator.aclose()


def make_screen(settings: ScreenSettings, cache: ResponseCache) -> Screen:
    """The screen; moderation answers are kept in `cache` (a rerun checks nothing twice)."""
    moderator = None
    if settings.moderation is not None:
        from curation.core.llm import api_key_from_env
        from curation.rewrite.moderation import Moderator

        found = settings.moderation
        moderator = Moderator(
            found.base_url,
            found.model,
            api_key_from_env(found.api_key_env),
            cache,
            timeout_s=found.timeout_s,
            max_attempts=found.max_attempts,
        )
    return Screen(SafetyScreen(settings.safety_terms), moderator)


async def screen_base_prompts(
    records: Sequence[dict[str, Any]], screen: Screen, concurrency: int
) -> list[dict[str, Any]]:
    """The base prompts of `records` that break a safety rule, as blocked records (with the rule) to store.

    Nothing is written here: the stage hands them to the executor, which stores them before any variant.
    """
    gate = asyncio.Semaphore(concurrency)

    async def rule_for(text: str) -> str | None:
        async with gate:
            return await screen.check(text)

    if screen.moderator is None:  # rules only: no endpoint to wait for
        rules = [screen.rules.check(r["text"]) for r in records]
    else:
        rules = await asyncio.gather(*(rule_for(r["text"]) for r in records))
    return [blocked_base_prompt(r, rule) for r, rule in zip(records, rules, strict=True) if rule]


def blocked_base_prompts(
    records: Sequence[dict[str, Any]], settings: ScreenSettings, cache: ResponseCache, concurrency: int
) -> list[dict[str, Any]]:
    """Screen `records` from synchronous code: an event loop of its own when the endpoint is called."""
    if settings.moderation is None:
        rules = SafetyScreen(settings.safety_terms)
        return [blocked_base_prompt(r, rule) for r in records if (rule := rules.check(r["text"]))]

    async def screened() -> list[dict[str, Any]]:
        screen = make_screen(settings, cache)
        try:
            return await screen_base_prompts(records, screen, concurrency)
        finally:
            await screen.aclose()

    return asyncio.run(screened())
