"""``python -m newsletter`` is the ``newsletter`` command."""

from newsletter.cli import main

main()
