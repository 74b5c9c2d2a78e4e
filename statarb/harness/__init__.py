"""Test harnesses, apart from the product: the live-mode chaos suite and the helpers that
run Freqtrade subprocesses offline. Not shipped in the wheel."""
