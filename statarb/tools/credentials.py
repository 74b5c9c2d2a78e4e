"""Local REST API credentials for Freqtrade, never shipped in the config.

Freqtrade's config schema requires ``username``, ``password`` and ``jwt_secret_key`` in
``api_server`` whenever the section exists, and reads ``FREQTRADE__API_SERVER__*``
environment variables before validating. The API server is therefore its own overlay,
``config.api.json``, with no credentials (``config.json`` has no ``api_server`` at all, so
commands that need no API server need nothing exported); they come from the environment.
When the operator has not exported them, ``make dry-run`` sources a file written here
once: random values, mode 0600, under ``user_data/`` (git ignored), so a fresh clone never
runs with a known password.

    python -m statarb.tools.credentials user_data/.api_credentials.env
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

PREFIX = "FREQTRADE__API_SERVER__"


def credentials() -> dict[str, str]:
    """Fresh random credentials. Values start with letters: Freqtrade turns numeric-looking
    environment values into numbers, which would break a password."""
    return {
        f"{PREFIX}USERNAME": "statarb",
        f"{PREFIX}PASSWORD": "pw-" + secrets.token_urlsafe(24),
        f"{PREFIX}JWT_SECRET_KEY": "jwt-" + secrets.token_hex(32),
        f"{PREFIX}WS_TOKEN": "ws-" + secrets.token_urlsafe(24),
    }


def ensure_file(path: Path) -> bool:
    """Write credentials to ``path`` unless it exists; returns True when it wrote."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# Local REST API credentials for freqtrade (generated; keep private)\n")
        for key, value in credentials().items():
            handle.write(f"{key}={value}\n")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m statarb.tools.credentials FILE", file=sys.stderr)
        return 2
    path = Path(args[0])
    if ensure_file(path):
        print(f"wrote new REST API credentials to {path} (username statarb)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
