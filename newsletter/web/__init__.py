"""The web application (FastAPI on Starlette, server-rendered Jinja2 pages, run by uvicorn).

The top layer beside ``cli/``: routes parse the request, call a service in one transaction owned
by the request, and render a template or a small JSON document. ``app.create_app`` is the
factory; one router module per audience or provider (``public``, ``ops``, ``webhooks/<name>``).
See docs/web.md.
"""
