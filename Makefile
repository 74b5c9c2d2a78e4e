# statarb for Freqtrade: every command a user or CI needs.
# `make backtest` (the main job) and `make test` install what they need first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The packaging tools, pinned: the wheel and the install test build with them, offline.
BUILD_PINS := pip==26.3 setuptools==84.2.1 wheel==0.48.0
# Wheels of every dependency, for tests/test_install.py, which installs the built wheel
# into a fresh venv without the network (filled once by `make test`, from pip's cache).
WHEELHOUSE := $(VENV)/wheelhouse
SHARED ?= ../shared
DATADIR ?= $(SHARED)/data/binance
MARKETS ?= $(SHARED)/markets/binance_usdm_exchangeInfo.json
CONFIG ?= config.json
OFFLINE ?= config.offline.json
# The REST API / FreqUI overlay: only `make dry-run` needs it (see config.api.json).
API_CONFIG ?= config.api.json
STRATEGY ?= CointPairsStrategy
# Freqtrade's timeframe (5m, 15m, 30m or 1h), passed to every command as
# FREQTRADE__TIMEFRAME; the windows of the statarb section are wall time, so they mean the
# same span at each. DATADIR=$(SHARED)/data/binance_5m holds 5m candles for them.
TIMEFRAME ?= 1h
# A config overlay of per-coin spread costs (`make spread` writes it); when set, backtest
# and hyperopt charge it on every fill on top of the fee.
SPREAD_DATADIR ?= $(SHARED)/data/binance_5m
SPREAD_FILE ?= user_data/statarb_spread.json
COSTS ?=
TIMERANGE ?= 20240101-20260101
# The first 60% of the shared data chooses parameters; the rest is out-of-sample.
IS_TIMERANGE ?= 20240101-20250314
OOS_TIMERANGE ?= 20250314-20260101
EPOCHS ?= 30
HYPEROPT_LOSS ?= SharpeHyperOptLossDaily
REPORT_ARGS ?=
# plot-dataframe: one pair over a range, with the trades of the latest backtest if any.
PAIR ?= WLD/USDT:USDT
PLOT_TIMERANGE ?= 20251001-20251201
# Freqtrade's bias checks (see the README): a range where every coin is listed, and for
# recursive-analysis a pair that is in a couple at the end of its range.
BIAS_TIMERANGE ?= 20251001-20251201
RECURSIVE_TIMERANGE ?= 20251001-20251107
BACKTEST_RESULTS ?= user_data/backtest_results
# Dry-run replay: the shared data shown as if it were now. At this instant the pairlist
# selects WLD~ARB and AAVE~LINK and WLD~ARB's z-score is -2.7 (an entry on the first candle).
REPLAY_START ?= 2025-11-07T01:00:00Z
DRYRUN_DB ?= sqlite:///user_data/dryrun.sqlite
SCAN_OUT ?= user_data/scan
SCAN_ARGS ?=
# Research sweep (python -m statarb.research): variants file and extra arguments.
VARIANTS ?= research/sweep.yml
RESEARCH_ARGS ?=
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist workers: the tests mostly wait (a
# two-worker run used 0.7 of the two cores), so three on two cores.
TEST_WORKERS ?= 3
# One BLAS thread per process: two workers each spinning two BLAS threads on two cores
# made the statsmodels parity test 3x slower (64 s against 19 s beside a busy core).
ONE_BLAS_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
SIM_PORT ?= 8765
# `make sim` replays the data as if it were now, like `make dry-run`, so a plain freqtrade
# command pointed at it (config.offline.json) finds candles up to now.
SIM_ARGS ?= --start $(REPLAY_START) --shift-to-now
# REST API credentials for the API overlay: taken from the environment when exported,
# otherwise from a random, git-ignored file made once (no config file ships any; see
# statarb/tools/credentials.py).
API_ENV ?= user_data/.api_credentials.env
WITH_API_ENV = if [ -z "$${FREQTRADE__API_SERVER__PASSWORD:-}" ]; then \
	$(BIN)/python -m statarb.tools.credentials $(API_ENV) && set -a && . ./$(API_ENV) && set +a; fi;

.PHONY: spread research-timeframes help install browser lock test test-fast lint scan research bench-research backtest hyperopt plot analysis bias report dry-run test-pairlist chaos sim bench bench-walkforward bench-backtest clean

help:
	@echo "make install   create .venv with pinned freqtrade, statsmodels, TA-Lib ... (idempotent)"
	@echo "make backtest  offline freqtrade backtest on the shared data (STRATEGY=$(STRATEGY) TIMERANGE=$(TIMERANGE))"
	@echo "make test      the whole test suite (unit, freqtrade integration, simulator, chaos)"
	@echo "make test-fast the unit tier only: no subprocess, no browser, no full-data run"
	@echo "make hyperopt  short offline hyperopt of the z thresholds, time stop and regime multipliers on IS_TIMERANGE=$(IS_TIMERANGE)"
	@echo "make plot      freqtrade plot-dataframe of PAIR=$(PAIR) over PLOT_TIMERANGE=$(PLOT_TIMERANGE) -> user_data/plot/"
	@echo "make analysis  freqtrade backtesting-analysis of the latest backtest, grouped by couple"
	@echo "make bias      freqtrade lookahead-analysis and recursive-analysis of the strategy"
	@echo "make dry-run   freqtrade trade --dry-run offline: simulator replaying REPLAY_START=$(REPLAY_START) as now, REST API/FreqUI on 127.0.0.1:8080"
	@echo "make test-pairlist  plain freqtrade test-pairlist with the CointegrationFilter, offline"
	@echo "make chaos     live-mode fault scenarios against the simulator, with a summary table"
	@echo "make report    per-couple table and equity chart of the latest backtest (user_data/report/)"
	@echo "make research  walk-forward sweep of VARIANTS=$(VARIANTS), chosen on the first 60% -> user_data/research/"
	@echo "make spread    per-coin spread cost from the 5m candles -> $(SPREAD_FILE) (make backtest COSTS=$(SPREAD_FILE))"
	@echo "make research-timeframes  the timeframe sweep (5m..1h) on the 5m data with spread costs -> user_data/research_timeframes/"
	@echo "make scan      cointegration scan of the shared data -> $(SCAN_OUT)/ (SCAN_ARGS='--days 60')"
	@echo "make sim       run the Binance USDT-M simulator in the foreground on port $(SIM_PORT), replaying REPLAY_START as now"
	@echo "make bench     cointegration engine benchmark against statsmodels, then the walk-forward (sliding vs batch)"
	@echo "make bench-walkforward  walk-forward formations, 200 coins x 2 years: sliding engine vs batch engine"
	@echo "make bench-backtest  full backtest time against freqtrade's sample strategy"
	@echo "make bench-research  research sweep speed and the formation cache's saving, against a freqtrade backtest"
	@echo "make lint      ruff"

install: $(STAMP)

$(WHEELHOUSE)/.complete: $(STAMP)
	@echo "make: wheels of the pinned dependencies -> $(WHEELHOUSE) (for the install test)"
	@$(BIN)/python -m pip wheel --quiet --disable-pip-version-check -c requirements.lock \
		--no-build-isolation -w $(WHEELHOUSE) . $(BUILD_PINS) 2>&1 | grep -v "is ignored" || true
	@rm -f $(WHEELHOUSE)/statarb-*.whl
	@ls $(WHEELHOUSE)/freqtrade-*.whl > /dev/null && touch $@

# Re-run only when the pins change; a second `make install` is a no-op.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(BUILD_PINS)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	$(BIN)/python -m statarb.ft.plugins install
	@touch $(STAMP)

# Debian's Chromium for the FreqUI browser test (tests/test_frequi_browser.py drives it
# with Playwright, whose own browser download cannot work offline): installed only when it
# is missing and we are root, without recommended packages (apt then upgrades an installed
# package only where Chromium's dependencies require a newer version; what it adds and
# upgrades is printed first, from a dry run). Otherwise a message, and that test fails
# with the same one.
CHROMIUM := /usr/bin/chromium
APT_LOG := $${TMPDIR:-/tmp}/statarb-apt-chromium.log
APT_FLAGS := -y -qq --no-install-recommends
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "make browser: $(CHROMIUM) is missing; install Debian's package chromium" \
			"(sudo apt-get install --no-install-recommends chromium):" \
			"tests/test_frequi_browser.py fails without it" >&2; \
		exit 0; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	{ apt-get -s $(APT_FLAGS) install chromium > $(APT_LOG) 2>&1 || \
		{ apt-get update -qq && apt-get -s $(APT_FLAGS) install chromium > $(APT_LOG) 2>&1; }; }; \
	echo "make browser: installing Debian's chromium (log in $(APT_LOG)):" \
		"$$(grep -c '^Inst' $(APT_LOG)) packages, of which upgrades:" \
		"$$(grep '^Inst [^ ]* \[' $(APT_LOG) | cut -d' ' -f2 | tr '\n' ' ')"; \
	apt-get $(APT_FLAGS) install chromium >> $(APT_LOG) 2>&1 || { tail -n 20 $(APT_LOG) >&2; \
		echo "make browser: apt-get install chromium failed: tests/test_frequi_browser.py will fail" >&2; }

# Regenerate the full pinned set from the current environment (after changing a pin).
lock:
	$(BIN)/python -m pip freeze --exclude-editable --exclude statarb | sort -f > requirements.lock

# pytest exits 5 when it collects no test: that is a failure here, never a pass. The 30
# slowest tests are printed at the end (where the time goes).
test: install browser $(WHEELHOUSE)/.complete
	@set +e; $(ONE_BLAS_THREAD) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=30 \
		$(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing" >&2; exit 1; fi; \
	exit $$rc

# The unit tier for the inner loop: no subprocess (tests/conftest.py fails a test that
# starts one), no browser, no full-data run.
test-fast: install
	@set +e; $(BIN)/python -m pytest -m "not slow" --durations=10 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-fast: pytest collected no tests - failing" >&2; exit 1; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check statarb strategies pairlists tests benchmarks

research: install
	$(BIN)/python -m statarb.research --variants $(VARIANTS) --config $(CONFIG) \
		--datadir $(DATADIR) $(RESEARCH_ARGS)

# Does a shorter bar pay? Every variant of research/timeframes.yml at 5m, 15m, 30m and 1h
# on the 5m data, the spread costs charged (make spread first), chosen on the first 60%.
research-timeframes: install $(SPREAD_FILE)
	$(BIN)/python -m statarb.research.timeframes --config $(CONFIG) \
		--datadir $(SPREAD_DATADIR) --costs $(SPREAD_FILE) $(RESEARCH_ARGS)

$(SPREAD_FILE):
	$(MAKE) spread

bench-research: install
	@$(BIN)/python benchmarks/bench_research.py --datadir $(DATADIR)

scan: install
	$(BIN)/python -m statarb.tools.scan --datadir $(DATADIR) --out $(SCAN_OUT) $(SCAN_ARGS)

# The main job: starts the simulator on a free port (markets come from it), runs the plain
# freqtrade backtest on the shared data and stops the simulator.
# The datadir at TIMEFRAME (DATADIR itself, or once a download of it through the
# simulator at TIMEFRAME, see statarb/tools/timeframe_data.py), and its whitelist pairs.
TIMEFRAME_DATA = $(BIN)/python -m statarb.tools.timeframe_data --datadir $(DATADIR) \
	--markets $(MARKETS) --config $(CONFIG) --timeframe $(TIMEFRAME)

backtest: install
	@data=$$($(TIMEFRAME_DATA)) && pairs=$$($(TIMEFRAME_DATA) --pairs) && \
	FREQTRADE__TIMEFRAME=$(TIMEFRAME) $(BIN)/python -m statarb.sim.run --datadir $(DATADIR) --markets $(MARKETS) -- \
		$(BIN)/freqtrade backtesting --config $(CONFIG) --config $(OFFLINE) \
		$(if $(COSTS),--config $(COSTS)) --datadir $$data --strategy $(STRATEGY) \
		--timerange $(TIMERANGE) --pairs $$pairs --export signals --cache none

# Parameters are chosen on the in-sample part only; the result goes to
# strategies/CointPairsStrategy.json, which later backtests pick up.
hyperopt: install
	@data=$$($(TIMEFRAME_DATA)) && pairs=$$($(TIMEFRAME_DATA) --pairs) && \
	FREQTRADE__TIMEFRAME=$(TIMEFRAME) $(BIN)/python -m statarb.sim.run --datadir $(DATADIR) --markets $(MARKETS) -- \
		$(BIN)/freqtrade hyperopt --config $(CONFIG) --config $(OFFLINE) $(if $(COSTS),--config $(COSTS)) \
		--datadir $$data --pairs $$pairs --strategy $(STRATEGY) --timerange $(IS_TIMERANGE) \
		--spaces buy sell --hyperopt-loss $(HYPEROPT_LOSS) --epochs $(EPOCHS) -j 2 \
		--random-state 42 --min-trades 20

RUN_FT = $(BIN)/python -m statarb.sim.run --datadir $(DATADIR) --markets $(MARKETS) -- $(BIN)/freqtrade

# Candles, trades (of the latest backtest, when there is one) and the couple subplots.
plot: install
	@trades="--no-trades"; [ -f $(BACKTEST_RESULTS)/.last_result.json ] && \
		trades="--export-filename $(BACKTEST_RESULTS)"; \
	$(RUN_FT) plot-dataframe --config $(CONFIG) --config $(OFFLINE) --datadir $(DATADIR) \
		--strategy $(STRATEGY) -p $(PAIR) --timerange $(PLOT_TIMERANGE) $$trades

# Entries and exits of the latest backtest (`make backtest` exports its signals).
analysis: install
	@$(RUN_FT) backtesting-analysis --config $(CONFIG) --config $(OFFLINE) \
		--backtest-directory $(BACKTEST_RESULTS) --analysis-groups 0 1

bias: install
	@$(RUN_FT) lookahead-analysis --config $(CONFIG) --config $(OFFLINE) --datadir $(DATADIR) \
		--strategy $(STRATEGY) --timerange $(BIAS_TIMERANGE) \
		--targeted-trade-amount 10 --minimum-trade-amount 6 && \
	$(RUN_FT) recursive-analysis --config $(CONFIG) --config $(OFFLINE) --datadir $(DATADIR) \
		--strategy $(STRATEGY) --timerange $(RECURSIVE_TIMERANGE) -p $(PAIR)

# The bot against the simulator in wall-time shift mode (Ctrl-C stops both).
# FreqUI: the production build in $(SHARED)/frequi, put where `freqtrade install-ui` would
# (which needs GitHub); without it the bot still runs, the REST API answers, no web UI.
dry-run: install
	@$(BIN)/python -m statarb.ft.frequi --source $(SHARED)/frequi || \
		echo "make dry-run: no FreqUI (freqtrade install-ui installs it where GitHub is reachable)"
	@$(WITH_API_ENV) \
	FREQTRADE__TIMEFRAME=$(TIMEFRAME) $(BIN)/python -m statarb.sim.run --datadir $(DATADIR) \
		--markets $(MARKETS) --start $(REPLAY_START) --shift-to-now -- \
		$(BIN)/freqtrade trade --config $(CONFIG) --config $(OFFLINE) --config $(API_CONFIG) \
		--strategy $(STRATEGY) \
		--db-url $(DRYRUN_DB)

test-pairlist: install
	@FREQTRADE__TIMEFRAME=$(TIMEFRAME) $(BIN)/python -m statarb.sim.run --datadir $(DATADIR) --markets $(MARKETS) \
		--start $(REPLAY_START) --shift-to-now -- \
		$(BIN)/freqtrade test-pairlist --config $(CONFIG) --config $(OFFLINE)

chaos: install
	$(BIN)/python -m statarb.harness.chaos $(CHAOS_ARGS)

report: install
	$(BIN)/python -m statarb.tools.report $(REPORT_ARGS)

sim: install
	$(BIN)/python -m statarb.sim --datadir $(DATADIR) --markets $(MARKETS) --port $(SIM_PORT) $(SIM_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_scan.py
	$(BIN)/python benchmarks/bench_walkforward.py

bench-walkforward: install
	$(BIN)/python benchmarks/bench_walkforward.py

spread: install
	$(BIN)/python -m statarb.tools.spread --datadir $(SPREAD_DATADIR) --out $(SPREAD_FILE)

bench-backtest: install
	$(BIN)/python benchmarks/bench_backtest.py --timerange $(TIMERANGE) --datadir $(DATADIR)
	$(BIN)/python benchmarks/bench_timeframes.py --timerange $(TIMERANGE) \
		--datadir $(SPREAD_DATADIR) --timeframes 1h,15m

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
