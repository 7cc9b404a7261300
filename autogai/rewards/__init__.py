"""rewards layer."""
