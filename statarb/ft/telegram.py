"""Pointing Freqtrade's Telegram bot at another Bot API server.

Why: Freqtrade 2026.9 builds its python-telegram-bot ``Application`` with only the token
(``Telegram._init_telegram_app`` in ``freqtrade/rpc/telegram.py``), so the bot always talks
to api.telegram.org. To run the real Telegram module offline - against
:class:`tests.telegram_fake.FakeTelegram` in tests, or a self-hosted Bot API server -
the base URL has to reach ``ApplicationBuilder.base_url``. :func:`patch_telegram` is the
import-hook patch (see :mod:`statarb.ft.plugins`) for ``freqtrade.rpc.telegram``: with
``STATARB_TELEGRAM_API_URL`` set, e.g. ``http://127.0.0.1:8081/bot``, the application is
built with that base URL (python-telegram-bot appends the token, or substitutes
``{token}``); without it nothing is touched and Freqtrade talks to Telegram as usual.

Importing this module runs :mod:`statarb.ft`'s version guard: the replaced method is
Freqtrade 2026.9's, and on another version it may have changed.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from statarb.ft import FREQTRADE_VERSION

__all__ = ["API_URL_ENV", "FREQTRADE_VERSION", "file_url_for", "patch_telegram"]

API_URL_ENV = "STATARB_TELEGRAM_API_URL"
"""Environment variable with the Bot API base URL Freqtrade's Telegram bot should use."""


def file_url_for(api_url: str) -> str:
    """The file-download base URL that goes with a Bot API base URL, in Telegram's layout
    (``https://api.telegram.org/bot`` -> ``https://api.telegram.org/file/bot``).

    Freqtrade downloads no files, but python-telegram-bot would otherwise keep
    api.telegram.org for them, and nothing in an offline run may point there.
    """
    head, sep, tail = api_url.rstrip("/").rpartition("/")
    if sep and tail.lower().startswith("bot"):
        return f"{head}/file/{tail}"
    return api_url.rstrip("/") + "/file/bot"


def patch_telegram(module: ModuleType) -> None:
    """Make ``module.Telegram`` build its application with ``$STATARB_TELEGRAM_API_URL``.

    Does nothing when the variable is unset or empty. The URL is read again each time the
    bot starts, so unsetting it later restores Freqtrade's own behaviour. Idempotent.
    Raises when the variable is set but Freqtrade's Telegram class does not look like
    2026.9's: silently talking to the real Telegram instead would be worse.
    """
    if not os.environ.get(API_URL_ENV):
        return
    telegram = getattr(module, "Telegram", None)
    original = getattr(telegram, "_init_telegram_app", None)
    application = getattr(module, "Application", None)
    if telegram is None or original is None or application is None:
        raise RuntimeError(
            f"{API_URL_ENV} is set but {module.__name__} has no Telegram._init_telegram_app "
            f"or Application (statarb supports freqtrade {FREQTRADE_VERSION}'s layout)")
    if getattr(telegram, "_statarb_base_url_patched", False):
        return

    def _init_telegram_app(self: Any) -> Any:
        api_url = os.environ.get(API_URL_ENV)
        if not api_url:
            return original(self)
        return (
            application.builder()
            .token(self._config["telegram"]["token"])
            .base_url(api_url)
            .base_file_url(file_url_for(api_url))
            .build()
        )

    _init_telegram_app.__doc__ = original.__doc__
    telegram._init_telegram_app = _init_telegram_app
    telegram._statarb_base_url_patched = True
