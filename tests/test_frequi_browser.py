"""FreqUI end to end, offline, in a real headless browser: the simulator (replay shown as
now) and `freqtrade trade --dry-run` as in ``test_dry_run_e2e.py``, FreqUI (the build in
``../shared/frequi``) served by the bot's API server, and Debian's Chromium driven with
Playwright as a user would: log in, find both legs of the couple, read the couple on a
leg's detail and custom data, load the strategy's plot configuration into the chart, and
force-exit one leg from the UI, after which the strategy closes the partner.

Each step leaves a screenshot in the test's tmp_path; the paths are printed (``pytest -s``).
Needs ``/usr/bin/chromium`` (``make test`` installs Debian's ``chromium`` when root) and
fails, never skips, without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from statarb.ft.frequi import install as frequi_install
from statarb.harness.offline import shifted_clock
from statarb.sim import SimServer
from tests.bots import PARTNER_CLOSED, THROTTLE_S, Bot, running_bot
from tests.offline import API_CREDENTIALS, REPLAY_START, REPO, wait_for
from tests.shared_data import DATADIR, MARKETS, SHARED, require_shared

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's package `chromium`; Playwright downloads nothing
# Chromium on a closed network: no sandbox (root), no GPU, and none of its own traffic
# (QUIC, first-run, background and component updates, sync); every non-loopback request
# goes to a closed proxy port, and the page's are aborted by the route below as well.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost",
]  # fmt: skip
FREQUI = SHARED / "frequi"
# FreqUI loads its icon sets at run time from these public icon services (Iconify's API
# and its mirrors); offline those fetches fail and icon-only buttons render as blank
# squares. These failures, and only these, are not page errors here.
ICON_HOSTS = {"api.iconify.design", "api.simplesvg.com", "api.unisvg.com"}
COUPLE = "WLD~ARB"  # what the pairlist selects at REPLAY_START, opened on the first loop
Y_PAIR, X_PAIR = "WLD/USDT:USDT", "ARB/USDT:USDT"
EXIT_TIMEOUT_S = 60  # from the click to both legs closed; a correct bot needs ~2 loops
VIEWPORT = {"width": 1920, "height": 1200}


# ---------------------------------------------------------------- FreqUI and Chromium
@pytest.fixture(scope="module")
def frequi() -> Path:
    require_shared()
    ui, _ = frequi_install(FREQUI)  # what `make dry-run` does (python -m statarb.ft.frequi)
    return ui


# FreqUI's toast region (reka-ui's ToastViewport, "Notifications (F8)").
TOAST_CSS = "[role=region][aria-label^='Notifications'] { display: none !important; }"


class Shots:
    """Numbered screenshots of each step in the test's tmp_path, their paths printed."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page, self.folder, self.paths = page, folder, []
        self.last = "start"  # the last step shot, to place an error

    def __call__(self, name: str, hide_toasts: bool = False) -> Path:
        path = self.folder / f"{len(self.paths) + 1:02d}-{name}.png"
        # Finished CSS transitions: a dialog is shot as the user sees it once it is open.
        # FreqUI's notifications (toasts, bottom right) may cover the tables.
        style = TOAST_CSS if hide_toasts else None
        self.page.screenshot(path=str(path), animations="disabled", style=style)
        self.paths.append(path)
        self.last = name
        print(f"screenshot: {path}", flush=True)
        return path


class Browser:
    """A headless Chromium page, with what went wrong in it: page errors, console errors
    (less the icon services' failures) and the requests that tried to leave loopback."""

    def __init__(self, context: BrowserContext, tmp_path: Path) -> None:
        self.context = context
        self.page = context.pages[0] if context.pages else context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.ignored: list[str] = []
        self.blocked: list[str] = []
        self.shot = Shots(self.page, tmp_path)
        context.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])"), self._block)
        self.page.on("pageerror", lambda exc: self.errors.append(
            f"pageerror after {self.shot.last!r}: {exc}"))
        self.page.on("console", self._console)

    def _block(self, route) -> None:
        self.blocked.append(route.request.url)
        route.abort()

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        text = f"console {msg.type} after {self.shot.last!r}: {msg.text} ({url})"
        if urlsplit(url).hostname in ICON_HOSTS:
            self.ignored.append(text)
        else:
            self.errors.append(text)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's package chromium "
                    "(sudo apt-get install chromium; `make test` does it when run as root)")
    profile = tmp_path / "chromium-profile"  # an empty user-data-dir
    profile.mkdir()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORT, service_workers="block")
        session: Browser | None = None
        try:
            session = Browser(context, tmp_path)
            yield session
        finally:
            context.close()
    for line in session.errors if session else ():  # also when the test failed earlier
        print(f"browser: {line}")


@pytest.fixture
def bot(tmp_path: Path, frequi: Path) -> Iterator[Bot]:
    """The e2e test's bot on a shifted replay of REPLAY_START, with FreqUI installed."""
    require_shared()
    clock = shifted_clock(REPLAY_START, run_s=240)
    # verbosity info: uvicorn logs every request, FreqUI's websocket URL with its token
    # included, so the test sees whether secrets stay out of the logs.
    with SimServer(datadir=DATADIR, markets=MARKETS, port=0, clock=clock) as sim, \
            running_bot(tmp_path, sim, api_verbosity="info") as runner:
        yield runner


def strategy_subplots() -> dict[str, dict]:
    """The subplots of CointPairsStrategy's ``plot_config``, read from the strategy file
    now (they may change)."""
    path = REPO / "strategies" / "CointPairsStrategy.py"
    spec = importlib.util.spec_from_file_location("_frequi_test_strategy", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plot_config = module.CointPairsStrategy.plot_config
    assert isinstance(plot_config, dict) and plot_config.get("subplots"), plot_config
    return plot_config["subplots"]


# The candle chart's ECharts option, as drawn. FreqUI's production build exposes no
# ECharts global, but Vue keeps the rendered vnode tree on the app's container, and
# vue-echarts exposes its ECharts instance (`chart`) on its component: walk the tree to
# the chart that has a "Candles" series, and summarise its option: the y axes (one per
# subplot, named after it), the series on them and how many of the candles in the zoomed
# window have a finite value in the series' column of the dataset.
CHART_SUMMARY_JS = """
() => {
  const app = document.querySelector('#app')?.__vue_app__;
  if (!app || !app._container) return null;
  const charts = [];
  const seen = new Set();
  const visit = (v) => {
    if (!v || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    const c = v.component;
    if (c) {
      const ref = c.exposed && c.exposed.chart;
      const inst = ref && (ref.value !== undefined ? ref.value : ref);
      if (inst && typeof inst.getOption === 'function' && !inst.isDisposed()) charts.push(inst);
      visit(c.subTree);
    }
    if (v.suspense) visit(v.suspense.activeBranch);
    if (Array.isArray(v.children)) v.children.forEach(visit);
    if (Array.isArray(v.dynamicChildren)) v.dynamicChildren.forEach(visit);
  };
  visit(app._container._vnode);
  for (const chart of charts) {
    const o = chart.getOption();
    if (!o.series || !o.series.some((s) => s.name === 'Candles')) continue;
    const rows = (o.dataset && o.dataset[0] && o.dataset[0].source) || [];
    const zoom = (o.dataZoom && o.dataZoom[0]) || {};
    const first = Math.floor(rows.length * (zoom.start ?? 0) / 100);
    const last = Math.ceil(rows.length * (zoom.end ?? 100) / 100);
    const visible = rows.slice(first, last);
    const values = (col) => visible.map((r) => r && r[col]).filter(Number.isFinite);
    return {
      rows: rows.length,
      visible: visible.length,
      legend: (o.legend && o.legend[0] && o.legend[0].data) || [],
      yAxes: o.yAxis.map((a, i) => {
        let extent = null;  // the axis range as drawn (ECharts' model: diagnostics only)
        try { extent = chart.getModel().getComponent('yAxis', i).axis.scale.getExtent(); }
        catch (e) { extent = null; }
        return { index: i, name: a.name, grid: a.gridIndex ?? 0, extent };
      }),
      series: o.series.map((s) => {
        const y = s.encode && s.encode.y;
        const col = Array.isArray(y) ? y[0] : y;
        const v = typeof col === 'number' ? values(col) : [];
        return {
          name: s.name, type: s.type, yAxisIndex: s.yAxisIndex ?? 0, column: col,
          finite: v.length,
          min: v.length ? Math.min(...v) : null,
          max: v.length ? Math.max(...v) : null,
          values: v,
        };
      }),
    };
  }
  return null;
}
"""


# ---------------------------------------------------------------- FreqUI, as a user
def labelled_value(scope, label: str) -> str:
    """The text of FreqUI's ValuePair with this label (the value beside the <label>)."""
    label_el = scope.locator("label", has_text=re.compile(f"^{re.escape(label)}$")).first
    expect(label_el).to_be_visible()
    # <div flex w-full><div><label/></div><div>value</div></div>
    return label_el.locator("xpath=../following-sibling::div[1]").inner_text().strip()


def open_trade_row(page: Page, pair: str):
    return page.locator(".open-trades tbody tr").filter(has_text=pair)


def check_leg_detail(browser: Browser, pair: str, partner: str) -> dict[str, str]:
    """Click the leg in the open trades list: its trade detail names the couple; its
    custom data shows the role and the partner."""
    page = browser.page
    open_trade_row(page, pair).locator("td").nth(1).click()
    detail = page.locator(".drag-header", has_text="Trade Detail").locator("xpath=..")
    expect(detail.locator("label", has_text=re.compile("^Pair$"))).to_be_visible()
    expect(detail).to_contain_text(pair)
    assert labelled_value(detail, "Pair") == pair
    tag = labelled_value(detail, "Entry tag")
    # One tag per couple, the same on both legs ("WLD~ARB"; the legs were once tagged
    # "WLD~ARB:y" / "WLD~ARB:x", which startswith(COUPLE) would still accept).
    assert tag == COUPLE, (pair, tag)
    browser.shot(f"detail-{pair.split('/')[0]}")

    detail.get_by_role("button", name="Show custom data").click()
    modal = page.get_by_role("dialog").filter(has_text="Custom data for trade")
    expect(modal).to_be_visible()
    expect(modal.locator("label", has_text=re.compile("^partner$"))).to_be_visible()
    custom = {key: labelled_value(modal, key) for key in ("couple", "role", "partner")}
    browser.shot(f"custom-data-{pair.split('/')[0]}")
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert custom["couple"] == COUPLE, custom
    assert custom["partner"] == partner, custom
    assert custom["role"] in ("y", "x"), custom
    return {"tag": tag, **custom}


def test_frequi_shows_the_couple_and_a_force_exit_closes_both_legs(
        browser: Browser, bot: Bot) -> None:
    client, proc, log = bot.client, bot.proc, bot.log
    page, shot = browser.page, browser.shot
    url = bot.url  # the bot's API server (FreqUI is served there too)
    subplots = strategy_subplots()
    assert set(client.plot_config()["subplots"]) == set(subplots)  # the bot serves the same

    # The couple opens on the first loop (test_dry_run_e2e checks the hedge ratio etc.).
    trades = wait_for("both legs of the couple", lambda: (
        s if len(s := client.status()) == 2 else None), 120, proc, log)
    assert {t["pair"] for t in trades} == {Y_PAIR, X_PAIR}, trades
    ids = {t["pair"]: t["trade_id"] for t in trades}

    # ---- log in: bot name, API username and password (the URL is the page's origin)
    page.goto(f"{url}/login")
    form = page.locator("form")
    expect(form.get_by_placeholder("Bot Name")).to_be_visible()
    form.get_by_placeholder("Bot Name").fill("statarb-e2e")
    form.get_by_placeholder("Freqtrader").fill(API_CREDENTIALS["FREQTRADE__API_SERVER__USERNAME"])
    form.locator("input[type=password]").fill(API_CREDENTIALS["FREQTRADE__API_SERVER__PASSWORD"])
    assert form.locator("#url-input").input_value() == url
    shot("login")
    # The login loads the bot's state (/show_config: its timeframe, strategy ...). Going on
    # before it has arrived races FreqUI: its chart then asks for candles with no timeframe
    # ("pair or timeframe not specified", an unhandled rejection), as a reload of /trade
    # does on a cold start. A user sees the bot listed first, and so does this test.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/show_config") and r.ok):
        form.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_text("Login failed")).to_have_count(0)
    expect(page.get_by_text("statarb-e2e").first).to_be_visible()  # the bot list
    shot("logged-in")

    # ---- the trade page (the nav bar's link): both legs in the open trades list
    page.get_by_role("link", name="Trade", exact=True).first.click()
    expect(page).to_have_url(f"{url}/trade")
    expect(page.locator(".drag-header", has_text="Open Trades")).to_be_visible()
    for pair in (Y_PAIR, X_PAIR):
        expect(open_trade_row(page, pair)).to_have_count(1, timeout=60_000)
    expect(page.locator(".open-trades tbody tr")).to_have_count(2)
    shot("trade-open-legs")

    # ---- the couple on each leg: entry tag, role and partner in the custom data
    y = check_leg_detail(browser, Y_PAIR, X_PAIR)
    x = check_leg_detail(browser, X_PAIR, Y_PAIR)
    assert {y["role"], x["role"]} == {"y", "x"}, (y, x)

    # ---- the chart of the selected leg (X): plot configurator, "From strategy", save
    chart_header = page.locator(".drag-header", has_text="Chart").locator("xpath=..")
    expect(chart_header.locator("canvas").first).to_be_visible(timeout=60_000)
    expect(chart_header).to_contain_text(X_PAIR)  # the chart follows the clicked trade
    chart_header.get_by_title("Plot configurator").click()
    configurator = page.get_by_role("dialog").filter(has_text="Plot Configurator")
    expect(configurator).to_be_visible()
    configurator.get_by_role("button", name="From strategy").click()
    for name in subplots:  # the configurator lists the strategy's subplots
        expect(configurator.get_by_role("option", name=name, exact=True)).to_be_visible()
    shot("plot-configurator-from-strategy")
    configurator.get_by_role("button", name="Save").click()
    configurator.get_by_role("button", name=re.compile("close", re.I)).first.click()
    expect(configurator).to_be_hidden()

    def drawn() -> dict | None:
        summary = page.evaluate(CHART_SUMMARY_JS)
        if not summary:
            return None
        axes = {a["name"] for a in summary["yAxes"]}
        return summary if set(subplots) <= axes else None

    summary = wait_for("the strategy's subplots in the chart", drawn, 60, proc, log)
    axis_of = {a["name"]: a["index"] for a in summary["yAxes"]}
    series = {s["name"]: s for s in summary["series"]}
    extent = {a["name"]: a["extent"] for a in summary["yAxes"]}

    def describe(sub: str, col: str) -> str:
        s = series.get(col, {})
        text = f"{col} {s.get('finite')} values {s.get('min')}..{s.get('max')}"
        floor = (extent.get(sub) or [None])[0]
        if s.get("type") == "bar" and floor is not None:
            # A bar is drawn from the axis floor (FreqUI's axes scale to the data, not 0):
            # a value at the floor is a bar of no height.
            flat = sum(1 for v in s.get("values", []) if v <= floor)
            text += f" (axis from {floor:g}: {flat} bars of no height)"
        return text

    print(f"chart: {summary['rows']} candles, {summary['visible']} in view; " + "; ".join(
        f"{sub}: " + ", ".join(describe(sub, col) for col in cols)
        for sub, cols in subplots.items()))
    assert summary["visible"] > 0, summary
    for sub, cols in subplots.items():
        for col in cols:
            drawn_on = series.get(col, {}).get("yAxisIndex")
            if drawn_on != axis_of[sub]:
                pytest.fail(f"subplot {sub!r}: no series {col!r} on its axis (FreqUI skips a "
                            f"column missing from the candles); series: {sorted(series)}")
            if not series[col]["finite"]:
                pytest.fail(f"subplot {sub!r}: {col!r} has no data in the "
                            f"{summary['visible']} candles in view")
            assert col in summary["legend"], (col, summary["legend"])
            floor = (extent.get(sub) or [None])[0]
            if series[col]["type"] == "bar" and floor is not None:
                flat = [v for v in series[col]["values"] if v <= floor]
                assert not flat, (f"subplot {sub!r}: {len(flat)} bars of {col!r} have no "
                                  f"height (axis from {floor:g}): they look like gaps")
    full = shot("chart-strategy-subplots")
    chart_only = full.with_name(f"{full.stem}-chart-only.png")
    chart_header.screenshot(path=str(chart_only), animations="disabled")
    print(f"screenshot: {chart_only}", flush=True)

    # ---- force exit of one leg from its action menu: the partner follows
    row = open_trade_row(page, X_PAIR)
    row.get_by_title("Actions").click()
    menu = page.get_by_role("dialog").filter(has_text="Close Actions menu")
    expect(menu).to_be_visible()
    exit_button = menu.get_by_role("button", name=re.compile(r"^Forceexit( market)?$"))
    exit_button.last.click()
    confirm = page.get_by_role("alertdialog").or_(page.get_by_role("dialog")).filter(
        has_text="Really exit trade")
    expect(confirm).to_be_visible()
    shot("force-exit-confirm")
    confirm.get_by_role("button", name="Confirm").click()
    clicked = time.monotonic()

    def both_closed() -> dict | None:
        if client.status():
            return None
        closed = {t["pair"]: t for t in client.trades()["trades"]
                  if t["trade_id"] in ids.values() and not t["is_open"]}
        return closed if len(closed) == 2 else None

    closed = wait_for("both legs closed after the force exit", both_closed, EXIT_TIMEOUT_S,
                      proc, log)
    elapsed = time.monotonic() - clicked
    print(f"both legs closed {elapsed:.1f} s after the click (loop {THROTTLE_S} s)")
    assert closed[X_PAIR]["exit_reason"] == "force_exit", closed[X_PAIR]
    assert closed[Y_PAIR]["exit_reason"] in PARTNER_CLOSED, closed[Y_PAIR]

    # FreqUI shows it too: no open trade left, both legs among the closed trades.
    expect(page.locator(".open-trades tbody tr").filter(has_text="/USDT")).to_have_count(
        0, timeout=30_000)
    history = page.locator(".trade-history tbody tr")
    for pair, reason in ((X_PAIR, "force_exit"), (Y_PAIR, closed[Y_PAIR]["exit_reason"])):
        expect(history.filter(has_text=pair).filter(has_text=reason)).to_have_count(
            1, timeout=30_000)
    history.filter(has_text=Y_PAIR).scroll_into_view_if_needed()
    shot("both-legs-closed", hide_toasts=True)

    assert not browser.errors, "\n".join(browser.errors)
    if browser.ignored:
        print(f"ignored {len(browser.ignored)} icon-service fetch failures (offline)")
    outside = {urlsplit(u).hostname for u in browser.blocked}
    assert outside <= ICON_HOSTS, f"the page tried to reach {sorted(outside - ICON_HOSTS)}"
    assert " - ERROR - " not in log.read_text()

    # ---- no secret in any log line: the log file and FreqUI's Logs page (/api/v1/logs)
    # both saw FreqUI's websocket request (its URL carries the JWT as ?token=).
    served = "\n".join(str(row[-1]) for row in client.logs()["logs"])
    for name, text in (("the log file", log.read_text()), ("/api/v1/logs", served)):
        tokens = re.findall(r"token=([^\s&\"']*)", text)
        assert tokens, f"{name}: no request with a token was logged (verbosity info)"
        assert set(tokens) == {"***"}, f"{name} shows a token: {sorted(set(tokens))[:3]}"
        for secret in (API_CREDENTIALS["FREQTRADE__API_SERVER__PASSWORD"],
                       API_CREDENTIALS["FREQTRADE__API_SERVER__WS_TOKEN"],
                       API_CREDENTIALS["FREQTRADE__API_SERVER__JWT_SECRET_KEY"]):
            assert secret not in text, f"{name} shows a secret"
