"""Property tier: Hypothesis checks of the pure parts (matching, signing, NDJSON parsing)."""
