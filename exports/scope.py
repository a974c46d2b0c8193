"""Which pairs a release may hold: those of the generators the config names, and never test-model pairs beside
real ones (pure; the app resolves the configured model names and hands them over)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BUILTIN = "builtin:"
# Reasons read after "N pairs ": in the card, the export's warning and `widespec status`.
NOT_CONFIGURED = "of models not in generator.models"
TEST_BESIDE_REAL = "of random-weight test models, beside real models"


@dataclass(frozen=True)
class ReleaseScope:
    """`models`: the configured generators' recorded names; None admits every generator (library use)."""

    models: frozenset[str] | None = None

    @classmethod
    def of(cls, models: Iterable[str]) -> ReleaseScope:
        return cls(frozenset(models))

    @property
    def real_models(self) -> bool:
        return self.models is not None and any(not m.startswith(BUILTIN) for m in self.models)

    def excluded(self, generator: str) -> str | None:
        """Why pairs of `generator` stay out of the release, or None when they may enter."""
        if self.models is None:
            return None
        if generator not in self.models:
            return NOT_CONFIGURED
        if generator.startswith(BUILTIN) and self.real_models:
            return TEST_BESIDE_REAL
        return None
