"""Any file given to the bulletin import gives a bulletin or our ``InvalidInput``, nothing else.

The pipeline is the pure part of ``service.import_bulletin``: size, decoding, characters,
parsing, column checks. Besides random bytes and text, bulletins are built from the shapes an
export has (ticker lines, date lines, headlines, paragraphs), mutated, so the parser's deeper
branches are reached too.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from newsletter.content.bulletin import Bulletin, decode_bulletin, parse_bulletin
from newsletter.content.validation import check_bulletin, check_characters, check_size
from newsletter.errors import InvalidInput

MAX_BYTES = 64 * 1024


def import_pipeline(data: bytes) -> Bulletin | InvalidInput:
    try:
        check_size(data, MAX_BYTES)
        text = decode_bulletin(data)
        check_characters(text)
        bulletin = parse_bulletin(text)
        check_bulletin(bulletin, text)
    except InvalidInput as exc:
        return exc
    return bulletin


RATE = st.from_regex(r"\A\+?\d{1,45}([.,]\d{1,45})?\Z")
CHANGE = st.from_regex(r"\A[+−-]?\d{1,45}([.,]\d{1,45})?\Z")
TICKER = st.builds(
    lambda bullet, base, quote, rate, change: f"{bullet}{base}/{quote} = {rate} {change}%",
    st.sampled_from(["• ", "  • ", "* ", "", "· "]),
    st.sampled_from(["KGS", "KZT", "TJS", "UZS", "TMT"]),
    st.sampled_from(["USD", "EUR"]),
    RATE,
    CHANGE,
)
DATE = st.sampled_from(["11 December 2025", "2025-12-11", "11.12.2025", "December 11, 2025"])
WORDS = st.lists(
    st.sampled_from(["Kazakhstan", "China", "and", "the", "Energy", "Sector", "of", "“Quoted”"]),
    min_size=1,
    max_size=12,
).map(" ".join)
HEADLINE = WORDS.map(str.title)
PARAGRAPH = WORDS.map(lambda words: words.capitalize() + ".")
NOISE = st.text(max_size=40)
LINE = st.one_of(TICKER, DATE, HEADLINE, PARAGRAPH, NOISE, st.just(""), st.just("\u00a0"))
ARTICLE = st.builds(
    lambda headline, paragraphs: [headline, *paragraphs],
    HEADLINE,
    st.lists(PARAGRAPH, max_size=4),
)
# An export's skeleton (tickers, the date, articles), then a few lines put anywhere in it.
SKELETON = st.builds(
    lambda tickers, date, articles: [*tickers, date, "", *(ln for a in articles for ln in a)],
    st.lists(TICKER, max_size=6),
    DATE,
    st.lists(ARTICLE, max_size=6),
)


@st.composite
def bulletins(draw: st.DrawFn) -> str:
    lines: list[str] = draw(SKELETON)
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(LINE))
    return "\n".join(lines)


BULLETIN = bulletins()
LINE_END = st.sampled_from(["\n", "\r\n", "\r"])


@given(st.binary(max_size=4096))
def test_any_bytes_give_a_bulletin_or_invalid_input(data: bytes) -> None:
    assert isinstance(import_pipeline(data), Bulletin | InvalidInput)


@given(st.text(max_size=2000))
def test_any_text_gives_a_bulletin_or_invalid_input(text: str) -> None:
    assert isinstance(
        import_pipeline(text.encode("utf-8", "surrogatepass")), Bulletin | InvalidInput
    )


@given(BULLETIN, LINE_END, st.booleans())
def test_anything_shaped_like_an_export_gives_a_bulletin_or_a_line_numbered_error(
    text: str, line_end: str, bom: bool
) -> None:
    data = ("\ufeff" if bom else "") + text.replace("\n", line_end)

    result = import_pipeline(data.encode())

    assert isinstance(result, Bulletin | InvalidInput)
    if isinstance(result, Bulletin):
        assert result.articles
        assert all(a.title and a.paragraphs for a in result.articles)
