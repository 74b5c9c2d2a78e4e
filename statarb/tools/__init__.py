"""Command-line tools over the core and the adapters: the scanner, the backtest report,
the charts and the local REST API credentials."""
