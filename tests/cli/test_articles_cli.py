"""The CLI of editing before sending: dry-run imports, languages, merge and split, images."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, SAMPLE_BULLETIN, Run

RUSSIAN = REPO / "tests" / "content" / "bulletins" / "bulletin-ru-2025-12-18.txt"


def test_a_dry_run_prints_what_would_be_stored_and_stores_nothing(run_cli: Run) -> None:
    result = run_cli("import-bulletin", str(RUSSIAN), "--dry-run", "--json")

    assert result.exit_code == 0
    document = result.json()
    assert document["dry_run"] is True
    assert document["import"] is None
    assert (document["date"], document["lang"], document["lang_detected"]) == (
        "2025-12-18",
        "ru",
        True,
    )
    assert document["rates"][1] == {"pair": "KZT/USD", "rate": "0.00196", "change_pct": "-0.51"}
    assert [(a["line"], len(a["paragraphs"])) for a in document["articles"]] == [
        (33, 4),
        (46, 4),
        (59, 3),
        (70, 3),
    ]
    assert all(a["id"] is None for a in document["articles"])
    assert run_cli("issue", "create", "--subject", "x").exit_code == 2  # nothing imported


def test_a_dry_run_for_people_lists_each_headline_with_its_paragraph_count(run_cli: Run) -> None:
    result = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--dry-run")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "would import the bulletin of 2025-12-11 (language en, detected): 6 articles, 5 rates"
    )
    assert "  line  55  Kazakhstan and China Cement Strategic Partnership (10 ¶)" in lines


def test_import_with_a_language_and_an_issue_in_another(run_cli: Run) -> None:
    imported = run_cli("import-bulletin", str(RUSSIAN), "--lang", "ky", "--json").json()
    issue = run_cli(
        "issue", "create", "--subject", "Апта", "--lang", "ru", "--number", "7", "--json"
    ).json()

    assert imported["lang"] == "ky"
    assert (issue["lang"], issue["number"], issue["mode"]) == ("ru", 7, "full")
    assert run_cli("import-bulletin", str(RUSSIAN), "--lang", "xx-").exit_code == 2


def test_articles_are_merged_and_split_by_id(run_cli: Run) -> None:
    articles = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--json").json()["articles"]
    first, second = articles[1]["id"], articles[2]["id"]

    merged = run_cli("article", "merge", str(first), str(second), "--json")
    split = run_cli("article", "split", str(first), "--at", "11", "--json")
    refused = run_cli("article", "split", str(first), "--at", "1")

    assert merged.exit_code == 0
    assert len(merged.json()["paragraphs"]) == 10 + 1 + 6
    assert split.exit_code == 0
    kept, new = split.json()["articles"]
    assert (kept["id"], len(kept["paragraphs"])) == (first, 10)
    assert new["title"] == articles[2]["title"]
    assert refused.exit_code == 2
    assert "between 2 and 9" in refused.stderr


def test_an_article_image_is_set_shown_and_removed(run_cli: Run) -> None:
    article = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--json").json()["articles"][0]
    url = "https://cdn.example.com/sco.jpg"

    shown = run_cli("article", "image", str(article["id"]), url, "--alt", "The hall", "--json")
    refused = run_cli("article", "image", str(article["id"]), "http://x.example/a.jpg")
    removed = run_cli("article", "image", str(article["id"]), "--remove", "--json")

    assert shown.json()["image"] == {"url": url, "alt": "The hall"}
    assert refused.exit_code == 2
    assert removed.json()["image"] is None


def test_human_output_of_merge_names_the_result(run_cli: Run, tmp_path: Path) -> None:
    articles = run_cli("import-bulletin", str(SAMPLE_BULLETIN), "--json").json()["articles"]
    result = run_cli("article", "merge", str(articles[0]["id"]), str(articles[1]["id"]))
    assert result.stdout.startswith(f"article {articles[0]['id']}: ")
    assert "(16 ¶)" in result.stdout


def test_an_issue_over_the_budget_is_offered_excerpt_mode(run_cli: Run, tmp_path: Path) -> None:
    paragraph = "The regional markets moved in step with the rouble this week. " * 12
    articles = "".join(
        f"Market Note Number {n} On Regional Trade\n\n" + f"{paragraph}\n\n" * 6 for n in range(16)
    )
    big = tmp_path / "big.txt"
    big.write_text(f"• KGS/USD = 0.01144 0%\n11 December 2025\n\n{articles}", encoding="utf-8")
    run_cli("import-bulletin", str(big))
    issue_id = run_cli("issue", "create", "--subject", "Big", "--json").json()["id"]

    rendered = run_cli("issue", "render", str(issue_id))
    switched = run_cli("issue", "set-mode", str(issue_id), "excerpt", "--json")
    checked = run_cli("issue", "check", str(issue_id))

    assert "over the 90 KB budget; Gmail clips messages at about 102 KB" in rendered.stderr
    assert "in excerpt mode it would be" in rendered.stderr
    assert rendered.stderr.rstrip().endswith(f"newsletter issue set-mode {issue_id} excerpt")
    assert switched.json()["mode"] == "excerpt"
    assert checked.exit_code == 0
