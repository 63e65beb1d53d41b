"""User-facing errors: one clear message, exit code 2, no traceback (see cli/main.py)."""


class UserError(Exception):
    """Bad input from the user: an unknown name, a malformed config, an unreadable store.

    The CLI prints the message on one line and exits with code 2. Raise it *before*
    anything is written, so bad input never changes what is stored.
    """


class ConfigError(UserError):
    """A configuration value or key that is not valid."""


class RegistryError(UserError):
    """An unknown or duplicate registered name."""


class StoreError(UserError):
    """The results store cannot be read or is not an alignlab store."""
