"""Settings, read once from ``NEWSLETTER_*`` environment variables and validated at start.

- ``variables``: every variable, with its default and meaning (the README's table is checked
  against it by a test);
- ``values``: the parsers of one value each (``SmtpUrl``, ``parse_smtp_url``, ...);
- ``settings``: ``Settings`` and ``load_settings``.

``from newsletter.config import Settings, load_settings`` is how the rest of the code reads it.
"""

from newsletter.config.settings import PACKAGE_DIR, Settings, load_settings
from newsletter.config.values import SmtpUrl, is_local_url, parse_smtp_url
from newsletter.config.variables import VARIABLES, Variable

__all__ = [
    "PACKAGE_DIR",
    "VARIABLES",
    "Settings",
    "SmtpUrl",
    "Variable",
    "is_local_url",
    "load_settings",
    "parse_smtp_url",
]
