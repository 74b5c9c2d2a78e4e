"""statarb: cointegration pairs trading for Freqtrade on Binance USDT-M perpetual futures.

The package root and its plain modules (``cointegration``, ``selection`` ...) are pure
numpy/pandas/statsmodels and never import Freqtrade; everything that touches Freqtrade
lives in :mod:`statarb.ft`.
"""

__version__ = "0.1.0"
