"""Provider webhooks, one module per provider, each with the same two functions.

``verify(headers, body, secret)`` raises ``InvalidInput`` unless the request is authentic;
``parse(body)`` returns ``list[BounceEvent]`` (empty for events that are not bounces) and
raises ``InvalidInput`` for a body that is not the provider's format. A dict literal atop
each module maps the provider's event names to ``BounceKind``; ``None`` means "not a bounce".
"""
