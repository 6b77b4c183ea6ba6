"""The one exception type for mistakes a user can fix (bad config, missing data, bad files)."""


class InfoGANError(Exception):
    """A problem with the user's input: the message says what was wrong and what to do."""
