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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from freqtrade_client import FtRestClient
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import InvalidToken

from statarb.core.legs import parse_leg_tag
from statarb.ft.couples_command import (
    ROUTE,
    UnsupportedFreqtradeLayout,
    couples_messages,
    patch_api_trading,
    patch_telegram_couples,
)
from statarb.ft.telegram import API_URL_ENV, file_url_for, patch_telegram
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


# -- /couples: the hook, then Freqtrade's Telegram module and REST app in process -----------

COUPLE_ID = "WLD~ARB@2025-11-07T01:00"
FEE = 0.0005
Z_WINDOW = 20


def test_couples_hook_is_installed_on_freqtrades_modules() -> None:
    import freqtrade.rpc.api_server.api_trading as api_trading
    import freqtrade.rpc.telegram as ft_telegram

    assert ft_telegram.Telegram._statarb_couples_patched
    assert [r.path for r in api_trading.router.routes].count(ROUTE) == 1
    patch_telegram_couples(ft_telegram)  # idempotent
    patch_api_trading(api_trading)
    assert [r.path for r in api_trading.router.routes].count(ROUTE) == 1


def test_couples_hook_refuses_a_telegram_module_that_is_not_2026_9s() -> None:
    with pytest.raises(UnsupportedFreqtradeLayout, match=r"freqtrade 2026\.9.*no Telegram"):
        patch_telegram_couples(ModuleType("freqtrade.rpc.telegram"))
    import freqtrade.rpc.telegram as ft_telegram

    module = ModuleType("freqtrade.rpc.telegram")
    for name in ("authorized_only", "CommandHandler", "ParseMode"):
        setattr(module, name, getattr(ft_telegram, name))

    class Telegram:  # handlers registered some other way: /couples would never be reached
        def _init(self) -> None:
            self._app.run_polling()

        async def _startup_telegram(self) -> None: ...

        @ft_telegram.authorized_only
        async def _help(self, update: Any, context: Any) -> None:
            await self._send_msg("help")

        async def _send_msg(self, msg: str, **kwargs: Any) -> None: ...

    module.Telegram = Telegram  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedFreqtradeLayout,
                       match=r"freqtrade 2026\.9.*Telegram\._init no longer adds"):
        patch_telegram_couples(module)
    assert not hasattr(Telegram, "_statarb_couples")


def test_couples_route_refuses_a_router_freqtrade_would_serve_without_auth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fastapi
    import freqtrade.rpc.api_server.api_trading as api_trading
    import freqtrade.rpc.api_server.webserver as webserver

    def configure_app(self: Any, app: Any, config: Any) -> None:
        from freqtrade.rpc.api_server.api_trading import router as api_trading
        app.include_router(api_trading, prefix="/api/v1")  # no authentication

    monkeypatch.setattr(webserver.ApiServer, "configure_app", configure_app)
    module = ModuleType("freqtrade.rpc.api_server.api_trading")
    module.router = fastapi.APIRouter()  # type: ignore[attr-defined]
    module.get_rpc, module.get_config = api_trading.get_rpc, api_trading.get_config  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedFreqtradeLayout,
                       match=r"freqtrade 2026\.9: .*trading router behind http_basic"):
        patch_api_trading(module)
    assert module.router.routes == []  # type: ignore[attr-defined]


def _make_trade(pair: str, *, short: bool, amount: float, rate: float, opened: datetime,
                custom: dict[str, Any] | None) -> Any:
    """An open futures trade with its filled entry order, in Freqtrade's database."""
    from freqtrade.enums import TradingMode
    from freqtrade.persistence import Order, Trade

    leverage = 2.0
    trade = Trade(
        pair=pair, base_currency=pair.split("/")[0], stake_currency="USDT",
        stake_amount=amount * rate / leverage, amount=amount, amount_requested=amount,
        open_rate=rate, open_date=opened, fee_open=FEE, fee_close=FEE, exchange="binance",
        is_short=short, leverage=leverage, trading_mode=TradingMode.FUTURES, is_open=True,
        interest_rate=0.0, enter_tag=pair.split("/")[0] if custom is None else custom["couple"],
    )
    side = "sell" if short else "buy"
    trade.orders.append(Order(
        ft_order_side=side, ft_pair=pair, ft_is_open=False, ft_amount=amount, ft_price=rate,
        order_id=f"entry-{pair}", status="closed", symbol=pair, order_type="market", side=side,
        price=rate, average=rate, amount=amount, filled=amount, remaining=0, cost=amount * rate,
        order_date=opened, order_filled_date=opened))
    Trade.session.add(trade)
    Trade.commit()
    for key, value in (custom or {}).items():
        trade.set_custom_data(key, value)
    return trade


def _expected_profit(short: bool, amount: float, open_rate: float, rate: float) -> float:
    """A futures leg's P&L at ``rate``: price move on the amount, less both fees."""
    move = (open_rate - rate) if short else (rate - open_rate)
    return move * amount - FEE * amount * (open_rate + rate)


@pytest.fixture
def couples_rpc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Freqtrade's RPC over an in-memory trade database holding one couple (WLD short y,
    ARB long x), a leg whose partner is gone (SOL) and a manual trade (BTC); prices fixed;
    the strategy's candle panel for the z-score; a selection file as the pairlist writes."""
    import numpy as np
    from freqtrade.enums import RunMode, TradingMode
    from freqtrade.persistence import init_db
    from freqtrade.rpc import RPC

    from statarb.core import published
    from statarb.core.walkforward import Universe, WalkForwardParams
    from statarb.ft.couples import CouplePlan

    init_db("sqlite://")
    now = datetime.now(UTC)
    opened = now - timedelta(hours=3, minutes=7)
    base = {"alpha": 0.1, "half_life": 6.0, "z_entry": 2.31, "side": -1,
            "signal_time": "2025-11-07T00:00:00+00:00", "couple": "WLD~ARB",
            "couple_id": COUPLE_ID, "beta": 1.2345}
    specs = {
        "WLD/USDT:USDT": dict(short=True, amount=160.0, rate=0.62,
                              custom={**base, "role": "y", "partner": "ARB/USDT:USDT"}),
        "ARB/USDT:USDT": dict(short=False, amount=812.0, rate=0.30,
                              custom={**base, "role": "x", "partner": "WLD/USDT:USDT"}),
        "SOL/USDT:USDT": dict(short=False, amount=2.0, rate=160.0,
                              custom={**base, "couple": "SOL~ETH", "role": "y",
                                      "couple_id": "SOL~ETH@2025-11-06T10:00",
                                      "partner": "ETH/USDT:USDT"}),
        "BTC/USDT:USDT": dict(short=False, amount=0.01, rate=100_000.0, custom=None),
    }
    prices = {"WLD/USDT:USDT": 0.60, "ARB/USDT:USDT": 0.305, "SOL/USDT:USDT": 158.0,
              "BTC/USDT:USDT": 101_000.0}
    trades = {pair: _make_trade(pair, opened=opened, **spec) for pair, spec in specs.items()}

    rng = np.random.default_rng(7)
    # Live, the panel ends with the last closed candle: the one before the candle of now.
    index = pd.date_range(pd.Timestamp(now).floor("1h") - pd.Timedelta(hours=60), periods=60,
                          freq="1h")
    closes = np.exp(rng.normal(0, 0.01, (60, 2)).cumsum(axis=0)) * [0.6, 0.3]
    universe = Universe(index=index, coins=["WLD", "ARB"], closes=closes, opens=closes,
                        params=WalkForwardParams(z_window=Z_WINDOW), formations=[])
    plan = CouplePlan(SimpleNamespace(timeframe="1h"))
    plan.universe = universe

    selection = published.Selection(
        couples=(published.Couple("WLD/USDT:USDT", "ARB/USDT:USDT", 0.1, 1.2345, 6.0, 0.001,
                                  0.004, -4.2),),
        formation_start=datetime(2025, 9, 8, 1, tzinfo=UTC),
        formation_end=datetime(2025, 11, 7, 1, tzinfo=UTC),
        created=datetime(2025, 11, 7, 1, 2, tzinfo=UTC), timeframe="1h")
    (tmp_path / published.FILE_NAME).write_text(json.dumps(selection.to_dict()))

    config = {
        "stake_currency": "USDT", "dry_run": True, "runmode": RunMode.DRY_RUN,
        "user_data_dir": str(tmp_path),
        "telegram": {"enabled": True, "token": TOKEN, "chat_id": str(CHAT_ID)},
        "api_server": {"enabled": True, "username": "me", "password": "pw-long-enough",
                       "jwt_secret_key": "k" * 32, "ws_token": "t" * 24,
                       "listen_ip_address": "127.0.0.1", "listen_port": 0, "CORS_origins": []},
    }
    bot = SimpleNamespace(
        config=config, trading_mode=TradingMode.FUTURES,
        strategy=SimpleNamespace(couples=plan, version=lambda: None),
        exchange=SimpleNamespace(
            get_rate=lambda pair, side, is_short, refresh=False: prices[pair]),
    )
    # The z-score the strategy's exit sees: log y - beta log x over the window of the last
    # closed candle (the candle before now's), z of its last value.
    row = len(index) - 1
    spread = np.log(closes[row - Z_WINDOW + 1:row + 1, 0]) - 1.2345 * np.log(
        closes[row - Z_WINDOW + 1:row + 1, 1])
    z_now = (spread[-1] - spread.mean()) / spread.std(ddof=1)
    profits = {pair: _expected_profit(spec["short"], spec["amount"], spec["rate"], prices[pair])
               for pair, spec in specs.items()}
    stakes = {pair: spec["amount"] * spec["rate"] / 2.0 for pair, spec in specs.items()}
    yield SimpleNamespace(rpc=RPC(bot), config=config, trades=trades, profits=profits,
                          stakes=stakes, z_now=z_now, opened=opened, selection=selection)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_couples_reply_reports_a_failure_instead_of_raising(
    couples_rpc: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from freqtrade.rpc.api_server.webserver import ApiServer

    def broken() -> list[dict[str, Any]]:
        raise KeyError("trade_id")

    monkeypatch.setattr(couples_rpc.rpc, "_rpc_trade_status", broken)
    (text,) = couples_messages(couples_rpc.rpc, couples_rpc.config)
    assert text == "statarb /couples failed: `'trade_id'` (details in the bot's log)"

    app = FastAPI()
    server = SimpleNamespace(handle_rpc_exception=ApiServer.handle_rpc_exception.__get__(
        SimpleNamespace()))
    ApiServer.configure_app(server, app, couples_rpc.config)
    monkeypatch.setattr(ApiServer, "_config", couples_rpc.config)
    monkeypatch.setattr(ApiServer, "_rpc", couples_rpc.rpc, raising=False)
    monkeypatch.setattr(ApiServer, "_has_rpc", True)
    answer = TestClient(app).get("/api/v1" + ROUTE, auth=("me", "pw-long-enough"))
    assert answer.status_code == 502
    assert answer.json() == {"error": "Error querying /api/v1/statarb/couples: "
                                      "statarb couples failed: 'trade_id'"}


def _check_couples_text(text: str, c: SimpleNamespace) -> None:
    wld, arb = c.trades["WLD/USDT:USDT"], c.trades["ARB/USDT:USDT"]
    profit = c.profits["WLD/USDT:USDT"] + c.profits["ARB/USDT:USDT"]
    stake = c.stakes["WLD/USDT:USDT"] + c.stakes["ARB/USDT:USDT"]
    assert text.startswith("*statarb couples:* `1 open`")
    assert f"*WLD~ARB* `{COUPLE_ID}`" in text
    assert f"  short `{wld.amount:g}` WLD/USDT:USDT (#{wld.id}, y)" in text
    assert f"  long `{arb.amount:g}` ARB/USDT:USDT (#{arb.id}, x)" in text
    assert f"hedge ratio `{1.2345:.4f}` · z entry `{2.31:+.2f}` · z now `{c.z_now:+.2f}`" in text
    assert (f"  held `3h 07m` · P&L `{profit:+.2f} USDT` (`{100 * profit / stake:+.2f}%` of "
            f"`{stake:.2f} USDT`)") in text
    sol, btc = c.trades["SOL/USDT:USDT"], c.trades["BTC/USDT:USDT"]
    assert (f"unpaired leg #{sol.id} SOL/USDT:USDT long `2` P&L "
            f"`{c.profits['SOL/USDT:USDT']:+.2f} USDT`: "
            "`SOL~ETH@2025-11-06T10:00: ETH/USDT:USDT is not open`") in text
    assert f"unpaired leg #{btc.id} BTC/USDT:USDT long" in text
    assert ("*Selected by the pairlist:* `1` (formed `2025-11-07 01:00`, formation window "
            "`2025-09-08 01:00` → `2025-11-07 01:00` UTC") in text
    assert "  `WLD~ARB` hedge ratio `1.2345` · half-life `6.0h` · p `0.0010`" in text


def test_couples_and_help_through_freqtrades_telegram_module(
    couples_rpc: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import freqtrade.rpc.telegram as ft_telegram
    from freqtrade.persistence import Trade

    telegram_class = ft_telegram.Telegram
    monkeypatch.setattr(telegram_class, "_init_telegram_app",
                        telegram_class._init_telegram_app)
    monkeypatch.setattr(telegram_class, "_statarb_base_url_patched", False, raising=False)
    with FakeTelegram(TOKEN, chat_id=CHAT_ID, max_poll_s=0.5) as tg:
        monkeypatch.setenv(API_URL_ENV, tg.url)
        patch_telegram(ft_telegram)
        bot = telegram_class(couples_rpc.rpc, couples_rpc.config)
        try:
            tg.wait_polling(30)
            tg.say("/couples")
            reply = tg.wait_for(lambda m: m.text.startswith("*statarb couples:*"), 30)
            assert reply.parse_mode == "Markdown"
            _check_couples_text(reply.text, couples_rpc)

            mark = len(tg.messages)
            tg.say("/help")
            help_text = tg.wait_for(lambda m: "_Bot Control_" in m.text, 30, start=mark).text
            assert "*/couples:* `Open statarb couples" in help_text
            assert help_text.index("*/couples:*") < help_text.index("*/help:*")
            assert "/forceexit" in help_text  # the rest is Freqtrade's own text

            # No couple open: said so, and the selection is still shown.
            for trade in couples_rpc.trades.values():
                Trade.session.delete(trade)
            Trade.commit()
            mark = len(tg.messages)
            tg.say("/couples")
            text = tg.wait_for(lambda m: m.text.startswith("*statarb couples:*"), 30,
                               start=mark).text
            assert text.startswith("*statarb couples:* no open couples\n\n"
                                   "*Selected by the pairlist:* `1`")
            assert "Unpaired" not in text
            # Only the configured chat may ask.
            mark = len(tg.messages)
            tg.say("/couples", chat_id=CHAT_ID + 1)
            tg.say("/version")
            tg.wait_for(lambda m: "*Version:*" in m.text, 30, start=mark)
            assert not any(m.text.startswith("*statarb couples:*") for m in tg.messages[mark:])
        finally:
            bot.cleanup()
    assert tg.unhandled == []


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_couples_rest_route_behind_freqtrades_auth(couples_rpc: SimpleNamespace,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from freqtrade.rpc.api_server.webserver import ApiServer

    # Freqtrade's own app, routers and auth; the RPC of the in-memory bot.
    app = FastAPI()
    ApiServer.configure_app(SimpleNamespace(handle_rpc_exception=None), app,
                            couples_rpc.config)
    monkeypatch.setattr(ApiServer, "_config", couples_rpc.config)
    monkeypatch.setattr(ApiServer, "_rpc", couples_rpc.rpc, raising=False)
    monkeypatch.setattr(ApiServer, "_has_rpc", True)
    client = TestClient(app)
    url = "/api/v1" + ROUTE
    assert client.get(url).status_code == 401
    assert client.get(url, auth=("me", "wrong")).status_code == 401
    answer = client.get(url, auth=("me", "pw-long-enough"))
    assert answer.status_code == 200, answer.text
    doc = answer.json()

    (couple,) = doc["couples"]
    wld, arb = couples_rpc.trades["WLD/USDT:USDT"], couples_rpc.trades["ARB/USDT:USDT"]
    assert [(leg["trade_id"], leg["role"], leg["pair"], leg["side"], leg["amount"])
            for leg in couple["legs"]] == [
        (wld.id, "y", "WLD/USDT:USDT", "short", 160.0),
        (arb.id, "x", "ARB/USDT:USDT", "long", 812.0)]
    profit = couples_rpc.profits["WLD/USDT:USDT"] + couples_rpc.profits["ARB/USDT:USDT"]
    stake = couples_rpc.stakes["WLD/USDT:USDT"] + couples_rpc.stakes["ARB/USDT:USDT"]
    assert couple["couple_id"] == COUPLE_ID and couple["beta"] == 1.2345
    assert couple["z_entry"] == 2.31 and couple["z_now"] == pytest.approx(couples_rpc.z_now)
    assert couple["profit_abs"] == pytest.approx(profit)
    assert couple["profit_pct"] == pytest.approx(100 * profit / stake)
    assert couple["stake_amount"] == pytest.approx(stake)
    assert abs(couple["held_seconds"] - (3 * 3600 + 7 * 60)) < 60
    assert {u["pair"]: u["reason"] for u in doc["unpaired"]} == {
        "SOL/USDT:USDT": "SOL~ETH@2025-11-06T10:00: ETH/USDT:USDT is not open",
        "BTC/USDT:USDT": "no statarb couple data (not a couple leg)"}
    assert doc["selection"]["formation_end"] == "2025-11-07T01:00:00+00:00"
    assert [c["couple"] for c in doc["selection"]["couples"]] == ["WLD~ARB"]
    # A JWT from Freqtrade's login works as well (FreqUI's way in).
    token = client.post("/api/v1/token/login", auth=("me", "pw-long-enough")).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get(url, headers=bearer).json()["couples"][0]["couple_id"] == COUPLE_ID


# -- Freqtrade's Telegram bot, end to end ---------------------------------------------------

THROTTLE_S = 2  # process_throttle_secs of this run: one bot loop
@pytest.fixture
def telegram_bot(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from statarb.harness.offline import shifted_clock
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
            yield {"tg": tg, "client": client, "proc": proc, "log": log, "sim": sim,
                   "user_data": user_data, "api_url": f"http://127.0.0.1:{api_port}"}
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


def _freeze(clock: Any) -> None:
    """Stop the replay where it is: prices hold still while answers are compared."""
    clock.set(clock.now_ms())
    clock.speed = 0.0


def _check_couples(bot: dict[str, Any], reply: Callable[..., BotMessage]) -> dict[str, Any]:
    """/couples in the chat and from the REST API match the two open trades as Freqtrade's
    /status reports them, their custom data, the strategy's z column and the pairlist's
    selection file. Returns the REST couple."""
    tg: FakeTelegram = bot["tg"]
    client: FtRestClient = bot["client"]
    _freeze(bot["sim"].clock)
    time.sleep(2 * THROTTLE_S + 1)  # a bot loop refreshes the cached rates, now fixed
    before = {t["trade_id"]: t for t in client.status()}
    mark = len(tg.messages)
    tg.say("/couples")
    text = reply("/couples", lambda m: m.text.startswith("*statarb couples:*"), 30,
                 start=mark).text
    doc = client._get("statarb/couples")  # FtRestClient's generic GET of /api/v1/<path>
    after = {t["trade_id"]: t for t in client.status()}
    assert ({i: t["total_profit_abs"] for i, t in before.items()}
            == {i: t["total_profit_abs"] for i, t in after.items()}), "prices moved"

    custom = {}
    for trade_id in before:
        (entry,) = client.list_custom_data(trade_id)
        custom[trade_id] = {d["key"]: d["value"] for d in entry["custom_data"]}
    (y_id,) = [i for i, c in custom.items() if c["role"] == "y"]
    (x_id,) = [i for i, c in custom.items() if c["role"] == "x"]
    y, x, cy = before[y_id], before[x_id], custom[y_id]
    assert cy["couple_id"] == custom[x_id]["couple_id"]
    beta, z_entry = float(cy["beta"]), float(cy["z_entry"])
    profit = y["total_profit_abs"] + x["total_profit_abs"]
    stake = y["stake_amount"] + x["stake_amount"]
    # The strategy's own z column of the y coin at the last closed candle (the exit's z).
    candles = client.pair_candles(y["pair"], "1h")
    z_now = candles["data"][-1][candles["columns"].index("couple_z")]

    assert text.startswith("*statarb couples:* `1 open`")
    assert f"`{cy['couple_id']}`" in text
    for role, t in (("y", y), ("x", x)):
        side = "short" if t["is_short"] else "long"
        assert f"  {side} `{t['amount']:g}` {t['pair']} (#{t['trade_id']}, {role})" in text
    assert f"hedge ratio `{beta:.4f}` · z entry `{z_entry:+.2f}` · z now `{z_now:+.2f}`" in text
    assert (f"P&L `{profit:+.2f} USDT` (`{100 * profit / stake:+.2f}%` of `{stake:.2f} USDT`)"
            in text)
    selection = json.loads((bot["user_data"] / "statarb_selection.json").read_text())
    formed = pd.Timestamp(selection["formation_end"]).strftime("%Y-%m-%d %H:%M")
    assert f"*Selected by the pairlist:* `{len(selection['couples'])}` (formed `{formed}`" in text
    for c in selection["couples"]:
        assert f"  `{c['name']}` hedge ratio `{c['beta']:.4f}`" in text

    (couple,) = doc["couples"]
    assert doc["unpaired"] == []
    assert couple["couple_id"] == cy["couple_id"] and couple["beta"] == pytest.approx(beta)
    assert [(leg["trade_id"], leg["role"], leg["pair"], leg["side"], leg["amount"])
            for leg in couple["legs"]] == [
        (t["trade_id"], role, t["pair"], "short" if t["is_short"] else "long", t["amount"])
        for role, t in (("y", y), ("x", x))]
    assert couple["z_entry"] == pytest.approx(z_entry)
    assert couple["z_now"] == pytest.approx(z_now, abs=1e-9)
    assert couple["profit_abs"] == pytest.approx(profit)
    assert couple["profit_pct"] == pytest.approx(100 * profit / stake)
    opened = min(y["open_timestamp"], x["open_timestamp"]) / 1000
    assert abs(couple["held_seconds"] - (time.time() - opened)) < 30
    assert doc["selection"]["formation_end"] == pd.Timestamp(
        selection["formation_end"]).isoformat()
    assert [c["couple"] for c in doc["selection"]["couples"]] == [
        c["name"] for c in selection["couples"]]

    # Freqtrade's authentication guards the route like every other one.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{bot['api_url']}/api/v1/statarb/couples", timeout=10)
    assert refused.value.code == 401
    print("\n/couples reply:\n" + text)
    return couple


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
    assert "*/couples:*" in help_text

    # /couples and GET /api/v1/statarb/couples, against Freqtrade's own view of the trades.
    couple = _check_couples(telegram_bot, reply)

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
    assert forced["trade_id"] == next(
        leg["trade_id"] for leg in couple["legs"] if leg["role"] == "x")
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

    # /entries groups by enter_tag: the couple is one line holding both legs, with their
    # combined profit (Freqtrade's own view of the closed trades).
    mark = len(tg.messages)
    tg.say("/entries")
    text = reply("/entries", lambda m: m.text.startswith("*Entry Tag Performance:*"), 30,
                 start=mark).text
    lines = [line for line in text.splitlines()[1:] if line.strip()]
    tag = forced["enter_tag"]
    assert tag == partner["enter_tag"] and "~" in tag and ":" not in tag, (tag, partner)
    assert len(lines) == 1 and f"`{tag}\t" in lines[0] and lines[0].endswith("(2)`"), text
    closed = [t for t in client.trades()["trades"] if t["enter_tag"] == tag]
    shown = float(re.search(r"\t(-?[\d,.]+) USDT", lines[0]).group(1).replace(",", ""))
    assert len(closed) == 2
    assert shown == pytest.approx(sum(t["profit_abs"] for t in closed), abs=0.01), lines[0]

    mark = len(tg.messages)
    tg.say("/couples")
    text = reply("/couples without couples", lambda m: m.text.startswith("*statarb couples:*"),
                 30, start=mark).text
    assert text.startswith("*statarb couples:* no open couples\n\n*Selected by the pairlist:*")
    doc = client._get("statarb/couples")
    assert doc["couples"] == [] and doc["unpaired"] == [] and doc["selection"]["couples"]

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
