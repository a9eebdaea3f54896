"""Browser tests: the product document's JavaScript examples run in headless Chromium."""
