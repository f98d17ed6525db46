"""One module per role group of ``relance-wallet``; each exposes a click group."""
