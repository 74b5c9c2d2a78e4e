"""statarb: cointegration pairs trading for Freqtrade on Binance USDT-M perpetual futures.

The layers, one folder each:

- :mod:`statarb.core`: the math and the decisions (Engle-Granger, selection, walk-forward,
  signals, sizing, the leg reconciler). numpy/pandas/statsmodels only; never Freqtrade.
- :mod:`statarb.ft`: the Freqtrade adapters, the only code that imports Freqtrade (the
  strategy and pairlist classes, data loading, the supervisor, the plugin hook).
- :mod:`statarb.sim`: the offline Binance USDT-M simulator.
- :mod:`statarb.research`: the strategy evaluated on the core, many variants, chosen honestly.
- :mod:`statarb.tools`: command-line tools (scan, report, plots, REST API credentials).
- :mod:`statarb.harness`: test harnesses (the chaos suite, offline subprocess helpers);
  not part of the installed product.
"""

__version__ = "0.1.0"
