"""Files the peers run: sovereign's Python templates (loaded by sovereign, by path)."""
