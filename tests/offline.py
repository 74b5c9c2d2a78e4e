"""Helpers for tests that run real freqtrade subprocesses with no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FREQTRADE = str(Path(sys.executable).parent / "freqtrade")


# Throwaway REST API credentials for runs of the project's config.json, which ships none.
# Only for configs that have an api_server section: Freqtrade turns these variables into
# that section, and a partial one fails validation.
API_CREDENTIALS = {
    "FREQTRADE__API_SERVER__USERNAME": "test",
    "FREQTRADE__API_SERVER__PASSWORD": "pw-test-only",
    "FREQTRADE__API_SERVER__JWT_SECRET_KEY": "jwt-" + "0" * 40,
    "FREQTRADE__API_SERVER__WS_TOKEN": "ws-test-only",
}


def offline_env(**extra: str) -> dict[str, str]:
    """Child environment in which only loopback is reachable through HTTP clients.

    Proxies point at a closed loopback port, so any request to a real host fails loudly.
    """
    closed = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        {
            "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed,
            "ALL_PROXY": closed,
            "http_proxy": closed,
            "https_proxy": closed,
            "all_proxy": closed,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env
