"""Which source file went into which batch: the `Ledger` protocol and its embedded SQLite
implementation. Another database replaces `sqlite.py`."""
