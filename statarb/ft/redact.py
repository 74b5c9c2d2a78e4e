"""Keep secrets out of every log line a running bot writes.

Why: FreqUI opens its websocket as ``/api/v1/message/ws?token=<jwt>``, and with the API
server's ``verbosity`` above ``error`` uvicorn logs each request line as it came, query
string included. The bot's log file and FreqUI's own Logs page (Freqtrade's buffering
handler on the root logger) would then show a token anyone can reuse. The filter here
rewrites such values to ``***`` before any handler formats the record, whoever logged it.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "install", "redact"]

# query parameters, form fields and "key: value" / "key=value" pairs whose value is secret
_SECRET = re.compile(
    r"(?i)\b((?:access_|refresh_|ws_|api_|bot_)?(?:token|password|passwd|secret|jwt|"
    r"api_?key|apikey|signature)s?)(=|:\s*|\"\s*:\s*\")([^&\s\"',;]+)"
)
# a Telegram bot token in a URL path: /bot123456:ABC-DEF.../sendMessage
_BOT_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """``text`` with every secret value replaced by ``***``."""
    text = _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _BOT_PATH.sub("/bot***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message when it carries a secret; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours to hide
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactSecrets()
# Loggers that emit request lines themselves (their own filters run before propagation).
_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "telegram")


def install() -> int:
    """Attach the filter to every root handler (the log file, the console, FreqUI's
    buffer) and to the loggers that log requests. Idempotent; returns how many places
    now hold it."""
    targets: list[logging.Filterer] = [*logging.getLogger().handlers]
    targets += [logging.getLogger(name) for name in _LOGGERS]
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
    return len(targets)
