"""Reliability scenarios: faults, load and abuse, each a bounded script."""
