"""Telling the language of a bulletin from its text, and normalising a given language tag."""

from __future__ import annotations

import pytest

from newsletter.content.language import detect_language, normalise_language_tag
from newsletter.errors import InvalidInput


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["Kazakhstan and China cement a strategic partnership in Astana."], "en"),
        (["Казахстан и Китай укрепляют стратегическое партнёрство в Астане."], "ru"),
        (["Қазақстан мен Қытай Астанада стратегиялық серіктестікті нығайтты."], "kk"),
        (
            [
                "Кыргызстан менен Өзбекстан чек ара боюнча жаңы келишимге кол коюшту, деп "
                "билдирди өкмөттүн маалымат кызматы. Бул келишим эки өлкөнүн ортосундагы көп "
                "жылдык талашты токтотот."
            ],
            "ky",
        ),
        (["Тоҷикистон ва Чин дар соҳаи энергетика ҳамкориро густариш медиҳанд."], "tg"),
        (["O‘zbekiston va Qozog‘iston suv taqsimoti bo‘yicha kelishuvga erishdi."], "uz"),
        (["Türkmenistan we Gazagystan demir ýoly boýunça ylalaşyga gol çekdiler."], "tk"),
        (["ایران به قزاقستان فناوری آبیاری می‌دهد و کار از بهار آغاز می‌شود."], "fa"),
    ],
)
def test_the_regions_languages_are_told_apart(texts: list[str], expected: str) -> None:
    assert detect_language(texts) == expected


def test_a_russian_text_quoting_kazakh_names_stays_russian() -> None:
    text = (
        "В Астане открылся центр «Қазақ әдебиеті». По словам организаторов, центр будет "
        "проводить лекции, выставки и встречи с писателями из разных регионов страны, а также "
        "переводить современную прозу на русский и английский языки."
    )
    assert detect_language([text]) == "ru"


def test_text_without_letters_is_english_by_default() -> None:
    assert detect_language(["2025 — 12 500", ""]) == "en"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("ru", "ru"), ("RU", "ru"), ("ru_RU", "ru-RU"), ("uz-Latn", "uz-Latn"), (" kk ", "kk")],
)
def test_language_tags_are_normalised(given: str, expected: str) -> None:
    assert normalise_language_tag(given) == expected


@pytest.mark.parametrize("given", ["", "russian", 'en" onload="x', "e", "ru-" + "x" * 20])
def test_a_bad_language_tag_is_refused(given: str) -> None:
    with pytest.raises(InvalidInput, match="language"):
        normalise_language_tag(given)
