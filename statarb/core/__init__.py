"""The pure core: math and decisions, numpy/pandas/statsmodels only.

Nothing here imports Freqtrade or :mod:`statarb.ft`, lazily or not
(``tests/test_layers.py`` parses every module and fails on such an import). What the core
decides, the adapters in :mod:`statarb.ft` carry out.
"""
