"""Core layer: registry, configs, result records, the SQLite store, the runner and seeding."""
