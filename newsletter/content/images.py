"""What an article's image may be: one picture every reader gets, never a tracking pixel. Pure.

A tracking pixel is an image whose address differs per reader, so that fetching it tells the
sender who opened the message. Our images are chosen per article, so the address is the same for
every reader, and the template shows them at the column's fixed width (never 1×1 or hidden).
What is refused here is what would break that: an address with a personalisation marker in it,
one that is not absolute https (HTML-11), one with a password in it, or one without alt text
(HTML-07: the image carries content, so a reader who does not load it must get its meaning).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from newsletter.errors import InvalidInput

MAX_IMAGE_URL_CHARS = 2048  # the width of articles.image_url
MAX_ALT_CHARS = 300


def check_image(url: str, alt: str) -> tuple[str, str]:
    """The image's address and alt text, cleaned; ``InvalidInput`` saying what is wrong."""
    url = check_image_url(url.strip())
    alt = " ".join(alt.split())
    if not alt:
        raise InvalidInput("an article image needs alt text saying what it shows")
    if len(alt) > MAX_ALT_CHARS:
        raise InvalidInput(f"the alt text is longer than {MAX_ALT_CHARS} characters")
    return url, alt


def check_image_url(url: str) -> str:
    """``url`` if it is one https address every reader gets; ``InvalidInput`` otherwise."""
    if len(url) > MAX_IMAGE_URL_CHARS:
        raise InvalidInput(f"the image address is longer than {MAX_IMAGE_URL_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidInput("the image address contains a space or a control character")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput(f"the image address must be an absolute https:// URL, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("the image address must not carry a user name or password")
    if "%%" in url:
        raise InvalidInput(
            "the image address must be the same for every reader (no %%…%% markers): "
            "an image addressed per reader is a tracking pixel"
        )
    return url
