"""Secrets never reach a log line: the filter on its own, and installed on the handlers a
running bot logs through (the log file, the console, FreqUI's Logs page buffer)."""

from __future__ import annotations

import logging
from logging.handlers import BufferingHandler

import pytest

from statarb.ft.redact import RedactSecrets, install, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpZGVudGl0eSI6eyJ1IjoiZnJlcXRyYWRlciJ9fQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(("line", "secret"), [
    (f'127.0.0.1:53412 - "GET /api/v1/message/ws?token={JWT} HTTP/1.1" 101', JWT),
    (f"GET /api/v1/message/ws?foo=1&token={JWT}&bar=2", JWT),
    ('login payload {"username": "u", "password": "hunter2-Secret"}', "hunter2-Secret"),
    ("POST https://api.telegram.org/bot123456789:AAH-x_yZ0123456789abcdef/sendMessage",
     "AAH-x_yZ0123456789abcdef"),
    ("exchange signed request: secret=ZyXwV987654 recvWindow=5000", "ZyXwV987654"),
])
def test_secret_values_are_replaced(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned and "***" in cleaned
    # Only the secret goes: what the line was about stays readable.
    if "telegram" in line:
        assert cleaned == "POST https://api.telegram.org/bot***/sendMessage"
    else:
        assert cleaned == line.replace(secret, "***")


def test_every_secret_of_a_line_goes() -> None:
    assert redact("apiKey=AbCdEf123456&signature=0f9e8d7c") == "apiKey=***&signature=***"


def test_lines_without_secrets_are_untouched() -> None:
    for line in ("statarb: 27 coins, 640 re-formations, 1493 couple selections",
                 '127.0.0.1:5000 - "GET /api/v1/status HTTP/1.1" 200',
                 "WLD~ARB entered: 1210 WLD long, 3842.7 ARB short (beta 1.47)"):
        assert redact(line) == line


def test_installed_filter_cleans_every_record_before_any_handler_keeps_it() -> None:
    root = logging.getLogger()
    buffer = BufferingHandler(100)
    root.addHandler(buffer)
    access = logging.getLogger("uvicorn.access")
    old_level, old_propagate = access.level, access.propagate
    try:
        access.setLevel(logging.INFO)
        access.propagate = True
        placed = install()
        assert install() == placed  # idempotent: one filter per place
        assert sum(isinstance(f, RedactSecrets) for f in buffer.filters) == 1
        # uvicorn logs its request line with %-style args, the token inside one of them
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:53412", "GET",
                    f"/api/v1/message/ws?token={JWT}", "1.1", 101)
        logging.getLogger("statarb.test").warning("plain %s line", "harmless")
        messages = [r.getMessage() for r in buffer.buffer]
        assert any("ws?token=***" in m for m in messages), messages
        assert all(JWT not in m for m in messages)
        assert "plain harmless line" in messages
    finally:
        root.removeHandler(buffer)
        access.setLevel(old_level)
        access.propagate = old_propagate
        for target in (buffer, access):
            for f in [f for f in target.filters if isinstance(f, RedactSecrets)]:
                target.removeFilter(f)
