"""A fake Telegram Bot API server on 127.0.0.1, for running Freqtrade's Telegram bot offline.

Why: Freqtrade's Telegram module (python-telegram-bot underneath) is only worth testing
against the real HTTP protocol - polling, command parsing, inline keyboards, message
formatting - but api.telegram.org is out of reach in tests and must never receive a bot's
messages from them. This server speaks the subset of the Bot API that python-telegram-bot
and Freqtrade use, keeps the bot's outgoing messages for tests to wait on, and lets a test
play the user of the configured chat::

    with FakeTelegram("123:fake", chat_id=42) as tg:
        # point the bot at tg.url (e.g. STATARB_TELEGRAM_API_URL=tg.url for Freqtrade)
        tg.wait_polling(30)
        tg.say("/status")
        reply = tg.wait_for(lambda m: "Trade ID" in m.text, timeout=30)

Updates follow Telegram's rules: ``getUpdates`` long-polls, an ``offset`` confirms every
earlier update, and ``deleteWebhook(drop_pending_updates=True)`` drops the queue. So a
command sent before the bot starts polling is lost, as it would be with Telegram; call
:meth:`FakeTelegram.wait_polling` first.

``python -m tests.telegram_fake`` runs the server in the foreground: lines typed on
stdin become the user's messages and the bot's messages are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ApiCall", "BotMessage", "FakeTelegram", "main"]

# Parameters that are plain text on the wire; python-telegram-bot sends every other
# non-string parameter JSON-encoded inside the form body, so those are decoded.
_TEXT_PARAMS = frozenset({
    "text", "caption", "parse_mode", "callback_query_id", "inline_message_id", "url",
    "description", "short_description", "name", "language_code", "secret_token",
    "business_connection_id", "action", "emoji", "title",
})


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made: the Bot API method (as spelled in the URL) and its
    decoded parameters."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class BotMessage:
    """A message the bot sent (``sendMessage``) or rewrote (``editMessageText``,
    ``editMessageReplyMarkup``); every send and every edit is its own entry, in order, so
    a test sees what the user saw and when."""

    method: str
    message_id: int
    chat_id: int | str | None
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    disable_notification: bool = False
    at: float = field(default_factory=time.time)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Every button of the message's keyboard (inline or reply), row by row."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]

    def callback_data(self, label: str) -> str:
        """The callback data of the inline button whose text contains ``label``."""
        for button in self.buttons:
            if label in button.get("text", "") and "callback_data" in button:
                return str(button["callback_data"])
        raise KeyError(f"no inline button {label!r} in {self.buttons}")


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class FakeTelegram:
    """The Bot API for one bot token, on 127.0.0.1 (a free port unless ``port`` is given).

    ``chat_id``/``user_id`` are the chat and user that :meth:`say` and :meth:`click` speak
    as. ``max_poll_s`` caps how long a ``getUpdates`` long poll is held: Telegram holds it
    for the requested ``timeout`` (Freqtrade asks for 20 s), and python-telegram-bot's
    shutdown waits for the poll in flight, so holding it that long here would add up to
    20 s to every bot shutdown in tests. An early empty answer is legal; the client just
    polls again.
    """

    def __init__(
        self, token: str = "123:fake", *, chat_id: int = 42, user_id: int | None = None,
        host: str = "127.0.0.1", port: int = 0, max_poll_s: float = 1.0,
        bot_username: str = "statarb_fake_bot",
    ) -> None:
        self.token = token
        self.chat_id = chat_id
        self.user_id = chat_id if user_id is None else user_id
        self.max_poll_s = max_poll_s
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "statarb fake bot",
            "username": bot_username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._sent: dict[int, dict[str, Any]] = {}  # message_id -> Message as last sent
        self._messages: list[BotMessage] = []
        self._calls: list[ApiCall] = []
        self._unhandled: list[str] = []
        self._commands: dict[str, list[dict[str, Any]]] = {}
        self._polling = threading.Event()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._stopping = False
        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="FakeTelegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held long polls, stop serving and close the socket (idempotent)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeTelegram is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The Bot API base URL without the token, as python-telegram-bot's ``base_url``
        takes it (it appends the token): ``http://127.0.0.1:PORT/bot``."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def file_url(self) -> str:
        """The file download base URL, for ``base_file_url`` (no files are served)."""
        return f"http://{self._host}:{self.port}/file/bot"

    # -- what tests read ------------------------------------------------------------

    @property
    def messages(self) -> list[BotMessage]:
        """A snapshot of every message the bot sent or edited, oldest first."""
        with self._cond:
            return list(self._messages)

    @property
    def calls(self) -> list[ApiCall]:
        """A snapshot of every API call the bot made, oldest first."""
        with self._cond:
            return list(self._calls)

    @property
    def unhandled(self) -> list[str]:
        """Methods the bot called that this server does not implement (answered 404)."""
        with self._cond:
            return list(self._unhandled)

    @property
    def commands(self) -> dict[str, list[dict[str, Any]]]:
        """The bot's command lists from ``setMyCommands``, by scope and language."""
        with self._cond:
            return dict(self._commands)

    def wait_polling(self, timeout: float) -> None:
        """Block until the bot has called ``getUpdates``: from then on :meth:`say` reaches
        it (earlier updates may be dropped by ``drop_pending_updates``)."""
        if not self._polling.wait(timeout):
            raise TimeoutError(f"the bot did not poll for updates within {timeout} s")

    def wait_for(self, predicate: Callable[[BotMessage], bool], timeout: float,
                 start: int = 0) -> BotMessage:
        """The first message (from index ``start`` of :attr:`messages`) that satisfies
        ``predicate``, waiting up to ``timeout`` seconds for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self._messages[start:]:
                    if predicate(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(f"  {m.method}: {m.text[:160]!r}"
                                     for m in self._messages[start:][-15:])
                    raise TimeoutError(
                        f"no matching bot message within {timeout} s; latest:\n{seen}")
                self._cond.wait(left)

    # -- what the user does -----------------------------------------------------------

    def say(self, text: str, *, chat_id: int | None = None,
            user_id: int | None = None) -> dict[str, Any]:
        """Queue a text message from the user to the bot; returns the Update. A leading
        ``/command`` gets its ``bot_command`` entity, which is what command handlers match."""
        chat = self._chat(self.chat_id if chat_id is None else chat_id)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(self.user_id if user_id is None else user_id),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push({"message": message})

    def click(self, message: BotMessage, label: str, *,
              user_id: int | None = None) -> dict[str, Any]:
        """Press the inline button whose text contains ``label`` on a bot message; queues
        the callback query and returns the Update."""
        data = message.callback_data(label)
        with self._cond:
            shown = dict(self._sent.get(message.message_id) or {})
        if not shown:
            raise KeyError(f"message {message.message_id} was not sent by the bot")
        query = {
            "id": str(next(self._callback_ids)),
            "from": self._user(self.user_id if user_id is None else user_id),
            "chat_instance": f"chat-{shown['chat']['id']}",
            "message": shown,
            "data": data,
        }
        return self._push({"callback_query": query})

    # -- internals -------------------------------------------------------------------

    def _chat(self, chat_id: int | str) -> dict[str, Any]:
        if isinstance(chat_id, int) or str(chat_id).lstrip("-").isdigit():
            cid = int(chat_id)
            if cid > 0:
                return {"id": cid, "type": "private", "first_name": "Tester"}
            return {"id": cid, "type": "supergroup", "title": "statarb"}
        return {"id": -1000000000001, "type": "channel", "title": str(chat_id),
                "username": str(chat_id).lstrip("@")}

    def _user(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": "Tester", "language_code": "en"}

    def _push(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            update = {"update_id": next(self._update_ids), **body}
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def _record(self, method: str, message: dict[str, Any], params: dict[str, Any]) -> None:
        self._messages.append(BotMessage(
            method=method, message_id=message["message_id"], chat_id=message["chat"]["id"],
            text=message.get("text", ""), parse_mode=params.get("parse_mode"),
            reply_markup=message.get("reply_markup"),
            disable_notification=bool(params.get("disable_notification", False)),
        ))
        self._cond.notify_all()

    def dispatch(self, method: str, params: dict[str, Any]) -> Any:
        """Answer one Bot API call; the ``result`` of Telegram's reply, or :class:`_ApiError`.
        Method names are case-insensitive, as on Telegram."""
        name = method.lower()
        with self._cond:
            self._calls.append(ApiCall(method, params))
        if name == "getupdates":
            return self._get_updates(params)
        with self._cond:
            handler = getattr(self, f"_api_{name}", None)
            if handler is None:
                self._unhandled.append(method)
                raise _ApiError(HTTPStatus.NOT_FOUND, "Not Found")
            return handler(params)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._polling.set()
        offset = int(params.get("offset") or 0)
        limit = min(int(params.get("limit") or 100), 100)
        hold = min(float(params.get("timeout") or 0), self.max_poll_s)
        deadline = time.monotonic() + hold
        with self._cond:
            if offset:
                # A positive offset confirms every earlier update; a negative one keeps
                # only the last -offset updates (what drop_pending_updates relies on).
                if offset > 0:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                else:
                    self._updates = self._updates[offset:]
            while not self._updates and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._updates[:limit]

    def _api_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    def _api_logout(self, params: dict[str, Any]) -> bool:
        return True

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    def _api_deletewebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_setwebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _api_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    def _api_getchat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params.get("chat_id", self.chat_id))
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11}

    def _api_sendchataction(self, params: dict[str, Any]) -> bool:
        return True

    def _api_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if not str(params.get("text", "")).strip():
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message text is empty")
        if "chat_id" not in params:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: chat_id is empty")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(params["chat_id"]),
            "from": self.bot_user,
            "text": params["text"],
        }
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = params["message_thread_id"]
        markup = params.get("reply_markup")
        # Only inline keyboards belong to the message; a reply keyboard is the chat's.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._sent[message["message_id"]] = message
        self._record("sendMessage", {**message, "reply_markup": markup}, params)
        return message

    def _edited(self, method: str, params: dict[str, Any],
                change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | bool:
        if params.get("inline_message_id"):
            return True  # inline-mode messages: Telegram answers True
        message_id = int(params.get("message_id") or 0)
        old = self._sent.get(message_id)
        if old is None:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message to edit not found")
        new = {**old, "edit_date": int(time.time())}
        change(new)
        if {k: v for k, v in new.items() if k != "edit_date"} == {
                k: v for k, v in old.items() if k != "edit_date"}:
            raise _ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message is not modified: "
                            "specified new message content and reply markup are exactly the "
                            "same as a current content and reply markup of the message")
        self._sent[message_id] = new
        self._record(method, new, params)
        return new

    def _api_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        def change(message: dict[str, Any]) -> None:
            message["text"] = params.get("text", "")
            _set_markup(message, params)

        return self._edited("editMessageText", params, change)

    def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        return self._edited("editMessageReplyMarkup", params,
                            lambda message: _set_markup(message, params))

    def _api_deletemessage(self, params: dict[str, Any]) -> bool:
        return self._sent.pop(int(params.get("message_id") or 0), None) is not None

    def _api_answercallbackquery(self, params: dict[str, Any]) -> bool:
        return True

    def _command_scope(self, params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return f"{json.dumps(scope, sort_keys=True)}|{params.get('language_code', '')}"

    def _api_setmycommands(self, params: dict[str, Any]) -> bool:
        self._commands[self._command_scope(params)] = list(params.get("commands") or [])
        return True

    def _api_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._commands.get(self._command_scope(params), [])

    def _api_deletemycommands(self, params: dict[str, Any]) -> bool:
        self._commands.pop(self._command_scope(params), None)
        return True


def _decode_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Bot API parameters from the query string and a form, JSON or multipart body."""
    params: dict[str, Any] = {}
    pairs = parse_qsl(query, keep_blank_values=True)
    if body and content_type.startswith("application/json"):
        params.update(json.loads(body))
    elif body and content_type.startswith("application/x-www-form-urlencoded"):
        pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    elif body and content_type.startswith("multipart/form-data"):
        pairs += _multipart_fields(content_type, body)
    for key, value in pairs:
        params[key] = value if key in _TEXT_PARAMS else _json_or_text(value)
    return params


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The non-file fields of a multipart body (uploads are not kept)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    parsed = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and part.get_filename() is None:
            fields.append((str(name), part.get_content()))
    return fields


class _Handler(BaseHTTPRequestHandler):
    """``/bot<token>/<method>`` over HTTP/1.1 (python-telegram-bot keeps connections)."""

    server_fake: FakeTelegram
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are closed eventually

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server_fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = split.path.strip("/").split("/")
        try:
            if len(parts) != 2 or not parts[0].startswith("bot"):
                raise _ApiError(HTTPStatus.NOT_FOUND, "Not Found")
            if parts[0][3:] != fake.token:
                raise _ApiError(HTTPStatus.UNAUTHORIZED, "Unauthorized")
            params = _decode_params(
                split.query, self.headers.get("Content-Type", ""), body)
            reply: dict[str, Any] = {"ok": True, "result": fake.dispatch(parts[1], params)}
            status = HTTPStatus.OK
        except _ApiError as err:
            status = err.status
            reply = {"ok": False, "error_code": int(err.status), "description": err.description}
        except Exception as err:  # a bug here must reach the client, not kill the thread
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            reply = {"ok": False, "error_code": 500, "description": f"fake server: {err!r}"}
        data = json.dumps(reply).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # A client that gave up on a long poll (a bot shutting down): nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.telegram_fake",
        description="Fake Telegram Bot API on 127.0.0.1. Lines on stdin are sent to the bot "
        "as the user's messages; the bot's messages are printed.")
    parser.add_argument("--token", default="123:fake")
    parser.add_argument("--chat-id", type=int, default=42)
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    with FakeTelegram(args.token, chat_id=args.chat_id, port=args.port) as tg:
        print(f"fake Telegram Bot API at {tg.url} (token {args.token}, chat {args.chat_id})\n"
              f"  export STATARB_TELEGRAM_API_URL={tg.url} FREQTRADE__TELEGRAM__ENABLED=true "
              f"FREQTRADE__TELEGRAM__TOKEN={args.token} "
              f"FREQTRADE__TELEGRAM__CHAT_ID={args.chat_id}", flush=True)
        shown = 0

        def show() -> None:
            nonlocal shown
            while True:
                try:
                    message = tg.wait_for(lambda m: True, timeout=3600, start=shown)
                except TimeoutError:
                    continue
                shown += 1
                print(f"[bot {message.method}] {message.text}", flush=True)

        threading.Thread(target=show, daemon=True).start()
        try:
            for line in sys.stdin:
                if line.strip():
                    tg.say(line.strip())
        except KeyboardInterrupt:
            pass
    return 0


def _set_markup(message: dict[str, Any], params: dict[str, Any]) -> None:
    """An edit's keyboard: Telegram drops the inline keyboard when an edit carries none
    (or an empty one)."""
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


if __name__ == "__main__":
    raise SystemExit(main())

