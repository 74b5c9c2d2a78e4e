"""CointPairsStrategy, as ``statarb-setup`` writes it into a user's ``user_data/strategies``.

The strategy itself is :class:`statarb.ft.strategy.CointPairsStrategy`, in the installed
package. Freqtrade's resolver takes only a class defined in the file it loads, hence this
subclass, which adds nothing (override callbacks or defaults here if you need to).
"""

from statarb.ft.strategy import CointPairsStrategy as _Strategy


class CointPairsStrategy(_Strategy):
    pass
