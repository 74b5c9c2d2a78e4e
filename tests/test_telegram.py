"""Freqtrade's Telegram bot against the fake Bot API server, offline.

The fake server is checked with python-telegram-bot's own ``Bot`` first (the client
Freqtrade uses), then the base-URL patch, then the real thing: the simulator (replay shown
as now) and ``freqtrade trade --dry-run`` with Telegram enabled, driven from the chat.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from freqtrade_client import FtRestClient
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import InvalidToken

from statarb.ft.telegram import API_URL_ENV, file_url_for, patch_telegram
from statarb.legs import parse_leg_tag
from tests.offline import (
    API_CONFIG,
    API_CREDENTIALS,
    FREQTRADE,
    REPLAY_START,
    REPO,
    free_port,
    offline_env,
    stop_process,
    wait_for,
)
from tests.telegram_fake import BotMessage, FakeTelegram

TOKEN = "123:fake"
CHAT_ID = 42


def _bot(tg: FakeTelegram) -> Bot:
    return Bot(TOKEN, base_url=tg.url, base_file_url=tg.file_url)


# -- the fake server, through python-telegram-bot -----------------------------------------


def test_fake_server_sends_and_delivers_updates_to_python_telegram_bot() -> None:
    async def run(tg: FakeTelegram) -> None:
        async with _bot(tg) as bot:  # initialize() calls getMe
            assert bot.username == tg.bot_user["username"]
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
            sent = await bot.send_message(CHAT_ID, "*hello*", parse_mode="Markdown",
                                          reply_markup=keyboard)
            assert sent.chat_id == CHAT_ID and sent.text == "*hello*"

            tg.say("/status table")
            (update,) = await bot.get_updates(timeout=5)
            assert update.message.text == "/status table"
            assert update.message.chat_id == CHAT_ID
            assert update.message.parse_entities() == {update.message.entities[0]: "/status"}

            # The inline button, pressed: a callback query carrying the message it sits on.
            tg.click(tg.messages[0], "Go")
            (update,) = await bot.get_updates(offset=update.update_id + 1, timeout=5)
            query = update.callback_query
            assert query.data == "go" and query.message.message_id == sent.message_id
            assert await query.answer()
            edited = await query.edit_message_text("done")
            assert edited.text == "done" and edited.reply_markup is None

            await bot.set_my_commands([("status", "Open trades")])
            assert [c.command for c in await bot.get_my_commands()] == ["status"]

    with FakeTelegram(TOKEN, chat_id=CHAT_ID) as tg:
        asyncio.run(run(tg))
        first, edit = tg.messages
        assert (first.method, first.chat_id, first.text, first.parse_mode) == (
            "sendMessage", CHAT_ID, "*hello*", "Markdown")
        assert first.buttons == [{"text": "Go", "callback_data": "go"}]
        assert (edit.method, edit.message_id, edit.text) == (
            "editMessageText", first.message_id, "done")
        assert [c.method for c in tg.calls][:2] == ["getMe", "sendMessage"]
        assert "answerCallbackQuery" in {c.method for c in tg.calls}
        assert tg.unhandled == []


def test_fake_server_long_poll_wakes_up_on_a_message_and_offsets_confirm() -> None:
    async def run(tg: FakeTelegram) -> tuple[float, Any, Any]:
        async with _bot(tg) as bot:
            threading.Timer(0.3, tg.say, args=("/help",)).start()
            started = time.monotonic()
            updates = await bot.get_updates(timeout=10)
            waited = time.monotonic() - started
            # Confirmed by the offset: not delivered again.
            again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
            return waited, updates, again

    with FakeTelegram(TOKEN, chat_id=CHAT_ID, max_poll_s=10) as tg:
        waited, updates, again = asyncio.run(run(tg))
    assert [u.message.text for u in updates] == ["/help"]
    assert 0.2 < waited < 3
    assert again == ()


def test_fake_server_drops_pending_updates_and_rejects_a_wrong_token() -> None:
    async def run(tg: FakeTelegram) -> Any:
        async with _bot(tg) as bot:
            tg.say("/status")
            await bot.delete_webhook(drop_pending_updates=True)
            return await bot.get_updates(timeout=0)

    with FakeTelegram(TOKEN, chat_id=CHAT_ID) as tg:
        assert asyncio.run(run(tg)) == ()

        async def wrong_token() -> None:
            async with Bot("999:other", base_url=tg.url):
                pass

        with pytest.raises(InvalidToken):
            asyncio.run(wrong_token())

        # An unknown method answers Telegram's 404 and is kept for tests to see.
        request = urllib.request.Request(f"{tg.url}{TOKEN}/sendDice", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 404
        assert json.loads(err.value.read()) == {
            "ok": False, "error_code": 404, "description": "Not Found"}
        assert tg.unhandled == ["sendDice"]


def test_wait_for_times_out_with_the_latest_messages() -> None:
    async def send(tg: FakeTelegram) -> None:
        async with _bot(tg) as bot:
            await bot.send_message(CHAT_ID, "something else")

    with FakeTelegram(TOKEN, chat_id=CHAT_ID) as tg:
        asyncio.run(send(tg))
        assert tg.wait_for(lambda m: "else" in m.text, timeout=1).text == "something else"
        with pytest.raises(TimeoutError, match="something else"):
            tg.wait_for(lambda m: "never" in m.text, timeout=0.2)
        with pytest.raises(TimeoutError):
            tg.wait_for(lambda m: True, timeout=0.1, start=1)


# -- the base-URL patch --------------------------------------------------------------------


def test_file_url_follows_telegrams_layout() -> None:
    assert file_url_for("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url_for("http://127.0.0.1:81/bot{token}/") == "http://127.0.0.1:81/file/bot{token}"
    assert file_url_for("http://127.0.0.1:81/api") == "http://127.0.0.1:81/api/file/bot"


def _dummy_telegram_module() -> ModuleType:
    module = ModuleType("dummy_telegram")

    class Telegram:
        def _init_telegram_app(self) -> str:
            return "original"

    module.Telegram = Telegram  # type: ignore[attr-defined]
    module.Application = object  # type: ignore[attr-defined]
    return module


def test_patch_does_nothing_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_URL_ENV, raising=False)
    module = _dummy_telegram_module()
    original = module.Telegram._init_telegram_app
    patch_telegram(module)
    assert module.Telegram._init_telegram_app is original
    assert not hasattr(module.Telegram, "_statarb_base_url_patched")


def test_patch_refuses_an_unknown_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_URL_ENV, "http://127.0.0.1:1/bot")
    with pytest.raises(RuntimeError, match="_init_telegram_app"):
        patch_telegram(ModuleType("freqtrade.rpc.telegram"))


def test_patched_freqtrade_telegram_app_talks_to_the_fake_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import freqtrade.rpc.telegram as ft_telegram

    telegram_class = ft_telegram.Telegram
    # Undone after the test: the class is Freqtrade's, shared with every other test.
    monkeypatch.setattr(telegram_class, "_init_telegram_app",
                        telegram_class._init_telegram_app)
    monkeypatch.setattr(telegram_class, "_statarb_base_url_patched", False, raising=False)
    with FakeTelegram(TOKEN, chat_id=CHAT_ID) as tg:
        monkeypatch.setenv(API_URL_ENV, tg.url)
        patch_telegram(ft_telegram)
        patched = telegram_class._init_telegram_app
        patch_telegram(ft_telegram)  # idempotent
        assert telegram_class._init_telegram_app is patched

        app = telegram_class._init_telegram_app(
            SimpleNamespace(_config={"telegram": {"token": TOKEN}}))
        assert app.bot.base_url == tg.url + TOKEN
        assert app.bot.base_file_url == tg.file_url + TOKEN

        async def run() -> None:
            async with app.bot:
                await app.bot.send_message(CHAT_ID, "through the patch")

        asyncio.run(run())
        assert [m.text for m in tg.messages] == ["through the patch"]

        # The variable is read when the bot starts: without it, Freqtrade's own app.
        monkeypatch.delenv(API_URL_ENV)
        app = telegram_class._init_telegram_app(
            SimpleNamespace(_config={"telegram": {"token": TOKEN}}))
        assert app.bot.base_url == "https://api.telegram.org/bot" + TOKEN


# -- Freqtrade's Telegram bot, end to end ---------------------------------------------------

THROTTLE_S = 2  # process_throttle_secs of this run: one bot loop
@pytest.fixture
def telegram_bot(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from statarb.offline import shifted_clock
    from statarb.sim import SimServer
    from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
    from tests.shared_data import DATADIR, MARKETS, require_shared

    require_shared()
    user_data = tmp_path / "user_data"
    for sub in ("data", "logs", "backtest_results"):
        (user_data / sub).mkdir(parents=True)
    api_port = free_port()
    extra = tmp_path / "config.e2e.json"
    extra.write_text(json.dumps({
        "user_data_dir": str(user_data),
        "api_server": {"listen_port": api_port},
        "internals": {"process_throttle_secs": THROTTLE_S},
    }))
    log = tmp_path / "freqtrade.log"
    clock = shifted_clock(REPLAY_START, run_s=150)
    with (FakeTelegram(TOKEN, chat_id=CHAT_ID) as tg,
          SimServer(datadir=DATADIR, markets=MARKETS, port=0, clock=clock) as sim):
        overlay = write_overlay(DEFAULT_OVERLAY, sim.port, DATADIR, tmp_path)
        cmd = [
            FREQTRADE, "trade", "--config", "config.json", "--config", API_CONFIG,
            "--config", str(overlay), "--config", str(extra),
            "--strategy", "CointPairsStrategy",
            "--db-url", f"sqlite:///{tmp_path / 'dryrun.sqlite'}",
        ]
        env = offline_env(
            **API_CREDENTIALS,
            FREQTRADE__TELEGRAM__ENABLED="true",
            FREQTRADE__TELEGRAM__TOKEN=TOKEN,
            FREQTRADE__TELEGRAM__CHAT_ID=str(CHAT_ID),
            **{API_URL_ENV: tg.url},
        )
        out = log.open("w")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            client = FtRestClient(
                f"http://127.0.0.1:{api_port}",
                API_CREDENTIALS["FREQTRADE__API_SERVER__USERNAME"],
                API_CREDENTIALS["FREQTRADE__API_SERVER__PASSWORD"],
            )
            yield {"tg": tg, "client": client, "proc": proc, "log": log, "sim": sim}
        finally:
            stop_process(proc)
            out.close()


def _reply(tg: FakeTelegram, what: str, predicate: Callable[[BotMessage], bool],
           timeout: float, proc: subprocess.Popen, log: Path, start: int = 0) -> BotMessage:
    """Wait for a bot message, failing at once (with Freqtrade's log) if Freqtrade died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"freqtrade exited ({proc.returncode}) while waiting for {what}:\n"
                        + log.read_text()[-4000:])
        try:
            return tg.wait_for(predicate, timeout=0.5, start=start)
        except TimeoutError as err:
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}: {err}\n"
                            + log.read_text()[-4000:])


def _trade_ids(messages: list[BotMessage]) -> dict[str, int]:
    """Pair -> trade id, from /status replies."""
    ids = {}
    for m in messages:
        found = re.search(r"\*Trade ID:\* `(\d+)`.*?\*Current Pair:\* (\S+)", m.text, re.S)
        if found:
            ids[found.group(2)] = int(found.group(1))
    return ids


@pytest.mark.slow
def test_freqtrade_telegram_bot_reports_and_takes_commands(telegram_bot) -> None:
    tg: FakeTelegram = telegram_bot["tg"]
    client: FtRestClient = telegram_bot["client"]
    proc, log = telegram_bot["proc"], telegram_bot["log"]

    def reply(what: str, predicate: Callable[[BotMessage], bool], timeout: float = 60,
              start: int = 0) -> BotMessage:
        return _reply(tg, what, predicate, timeout, proc, log, start)

    # Start-up: Freqtrade's dry-run warning, configuration summary and state.
    reply("the dry-run warning", lambda m: "Dry run is enabled" in m.text, 90)
    reply("the start-up summary",
          lambda m: "*Exchange:* `binance`" in m.text and "CointPairsStrategy" in m.text)
    reply("the running status", lambda m: m.text == "*Status:* `running`")
    tg.wait_polling(60)

    # The couple opens on the first loop; Freqtrade announces each leg.
    trades = wait_for("both legs of a couple", lambda: (
        s if len(s := client.status()) == 2 else None), 120, proc, log)
    pairs = sorted(t["pair"] for t in trades)
    for pair in pairs:
        reply(f"the entry of {pair}",
              lambda m, pair=pair: "New Trade" in m.text and f"*Pair:* `{pair}`" in m.text)

    # /status: one message per open trade, with its id and pair.
    mark = len(tg.messages)
    tg.say("/status")
    reply("/status for both legs",
          lambda _: len(_trade_ids(tg.messages[mark:])) == 2, 30, start=mark)
    ids = _trade_ids(tg.messages[mark:])
    assert ids == {t["pair"]: t["trade_id"] for t in trades}

    mark = len(tg.messages)
    tg.say("/help")
    help_text = reply("/help", lambda m: "_Bot Control_" in m.text, 30, start=mark).text
    assert "/forceexit" in help_text and "/status" in help_text

    # /forceexit without an id asks which trade, with inline buttons; Cancel edits it.
    mark = len(tg.messages)
    tg.say("/forceexit")
    question = reply("the trade picker", lambda m: m.text == "Which trade?", 30, start=mark)
    # Freqtrade's callback data is "force_exit__<id> <L|S> <leverage>x" (its table row).
    assert {b["callback_data"].split(" ")[0] for b in question.buttons} == {
        *(f"force_exit__{i}" for i in ids.values()), "force_exit__cancel"}
    tg.click(question, "Cancel")
    reply("the cancelled picker", lambda m: m.method == "editMessageText"
          and m.message_id == question.message_id and m.text == "Force exit canceled.",
          30, start=mark)
    assert len(client.status()) == 2

    # /forceexit <id> of one leg: it exits, and the strategy closes the partner.
    forced = next(t for t in trades
                  if (parse_leg_tag(t["enter_tag"], t["pair"]) or ("", ""))[1] == "x")
    partner = next(t for t in trades if t is not forced)
    mark = len(tg.messages)
    tg.say(f"/forceexit {forced['trade_id']}")
    reply("the forced exit", lambda m: f"{forced['pair']} (#{forced['trade_id']})" in m.text
          and "*Exit Reason:* `force_exit`" in m.text, 30, start=mark)
    reply("the partner's exit", lambda m: f"{partner['pair']} (#{partner['trade_id']})" in m.text
          and "*Exit Reason:* `partner_exit`" in m.text, 30, start=mark)
    wait_for("no open trades", lambda: client.status() == [], 30, proc, log)
    # The strategy's own notification reaches the chat too (dp.send_msg -> strategy_msg).
    reply("the strategy's couple-closed message",
          lambda m: m.text.startswith("statarb couple closed"), 30, start=mark)

    mark = len(tg.messages)
    tg.say("/status")
    reply("/status without trades", lambda m: "no active trade" in m.text.lower(), 30, start=mark)

    assert {m.chat_id for m in tg.messages} == {CHAT_ID}
    assert tg.unhandled == []
    text = log.read_text()
    assert "rpc.telegram is listening" in text
    assert "TelegramError" not in text and "NetworkError" not in text
    assert " - ERROR - " not in text
    assert not telegram_bot["sim"].stats.unhandled, telegram_bot["sim"].stats.unhandled
    methods = sorted({c.method for c in tg.calls})
    print(f"\nBot API methods used by Freqtrade: {', '.join(methods)}; "
          f"{len(tg.messages)} messages")
