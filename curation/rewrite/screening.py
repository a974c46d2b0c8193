"""The safety screen as a pass runs it: built-in rules and extra terms, then the moderation endpoint."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from curation.core.workspace import Workspace
from curation.rewrite.safety import SafetyScreen

if TYPE_CHECKING:  # the moderation module loads the openai client: imported only when it is configured
    from curation.rewrite.moderation import Moderator


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


def make_screen(ws: Workspace) -> Screen:
    section = ws.config["rewriter"]
    moderator = None
    if section["moderation_model"]:
        from curation.rewrite.llm import api_key_from_env
        from curation.rewrite.moderation import Moderator

        key = api_key_from_env(section["api_key_env"])
        moderator = Moderator(
            section["base_url"],
            section["moderation_model"],
            key,
            ws.store,
            timeout_s=section["timeout_s"],
            max_attempts=section["max_attempts"],
        )
    return Screen(SafetyScreen(section["safety_terms"]), moderator)


async def screen_base_prompts(ws: Workspace, screen: Screen) -> int:
    """Mark base prompts that break a safety rule as blocked (with the rule); returns how many were marked."""
    gate = asyncio.Semaphore(ws.config["rewriter"]["max_concurrency"])

    async def rule_for(text: str) -> str | None:
        async with gate:
            return await screen.check(text)

    records = list(ws.store.iter("base_prompt", status="ok"))
    if screen.moderator is None:  # rules only: no endpoint to wait for
        rules = [screen.rules.check(r["text"]) for r in records]
    else:
        rules = await asyncio.gather(*(rule_for(r["text"]) for r in records))
    blocked = [{**r, "status": "blocked", "block_rule": rule} for r, rule in zip(records, rules, strict=True) if rule]
    return ws.store.put("base_prompt", blocked, on_conflict="replace")
