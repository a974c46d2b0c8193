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
