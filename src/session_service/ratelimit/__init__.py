"""Rate limits per client address and kind of call."""
