"""Provider webhooks: one router module per provider, one fixed ``post()`` in ``base``."""
