"""Research: the whole strategy evaluated on the core, many variants, chosen honestly.

The evaluation replays the core's plan with Freqtrade's backtest accounting
(:mod:`statarb.research.engine`); data and exchange limits are read through
:mod:`statarb.ft` like everything else that touches Freqtrade.
"""
