"""Errors that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class WidespecError(Exception):
    """A failure that is reported to the user as one line; exit code 1 (runtime failure)."""

    exit_code = 1


class InputError(WidespecError):
    """Bad input: a file, row, field or option the user can fix; exit code 2."""

    exit_code = 2


class RecordInvalid(InputError):
    """A record violates its JSON Schema; the message names the record id and the JSON path."""


class ImageDamaged(WidespecError):
    """A stored image whose bytes no longer hash to the sha256 it is stored under (a truncated or partial copy,
    a bad disk): it is never scored, judged, shown or released as that image."""

    def __init__(self, sha256: str, path: str) -> None:
        super().__init__(sha256, path)  # the args rebuild it when it crosses a process (DataLoader, Ray)
        self.sha256, self.path = sha256, path

    def __str__(self) -> str:
        return (
            f"image {self.sha256} is damaged: {self.path} does not hash to its name; restore it from a backup "
            "(`widespec verify` lists every damaged file)"
        )
