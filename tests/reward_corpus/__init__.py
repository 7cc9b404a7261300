"""Reward-program fixtures: a hostile corpus (every entry must be rejected or contained with its reason)
and a legitimate corpus (every entry must be accepted). ``SENTINEL`` in a source is replaced by a path inside
the test's temporary directory that must never come to exist."""
