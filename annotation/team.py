"""Annotator accounts on a team server (`annotation.url`).

Label Studio's API cannot set another account's password (an account it makes has no usable login), so on a
team server annotators sign up themselves, with a password of their choosing, through the organization's invite
link, which the token in `annotation.token_env` reads. Without a token the server's admin makes the accounts.
"""

from __future__ import annotations

import os

from annotation import client
from annotation.server import Connection, annotator_email
from curation.core.errors import InputError, WidespecError
from curation.core.workspace import Workspace


def signup_line(ws: Workspace, name: str) -> str:
    """One line telling the curator how `name` gets an account on the team server."""
    cfg = ws.settings.annotation
    email = annotator_email(name)
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise InputError(
            f"annotation.url is a team server and ${cfg.token_env} is empty: the server's admin must create {email}'s "
            f"account (or export an admin API token in ${cfg.token_env} to get the sign-up link)"
        )
    conn = Connection(str(cfg.url).rstrip("/"), token)
    try:
        with client.api_errors(conn.url):
            link = client.invite_link(conn)
    except WidespecError as exc:
        raise InputError(f"{exc}: the server's admin must create {email}'s account") from None
    return f"team server: {email} signs up at {link} and chooses a password there"
