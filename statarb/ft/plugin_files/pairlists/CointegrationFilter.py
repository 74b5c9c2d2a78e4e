"""CointegrationFilter, as Freqtrade loads it from the installed package.

:mod:`statarb.ft.plugins` adds this directory to Freqtrade's pairlist search path. The
filter itself is :class:`statarb.ft.pairlist.CointegrationFilter`; Freqtrade's resolver
takes only a class defined in the file it loads, hence this subclass, which adds nothing.
"""

from statarb.ft.pairlist import CointegrationFilter as _Filter


class CointegrationFilter(_Filter):
    pass
