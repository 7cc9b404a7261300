"""Core: errors, config validation, shared plain-data types, logging, seeding, paths. Imports nothing internal."""
