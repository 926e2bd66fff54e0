"""The review queue as people meet it: the API, the web page and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from relata.cli import app
from relata.config import Settings, get_settings
from relata.db import Database
from relata.identity.matching import batch
from tests.helpers import make_source, put, rec
from tests.test_matching_store import ANNETT, JUERGEN, JUERGEN_AGAIN, _people, weight  # noqa: F401
from tests.test_matching_store import matching as matching


@pytest.fixture
def queued(db: Database, matching: Settings) -> dict[str, int]:
    """This file's people deduplicated: one pair (the two Annetts) open for review."""
    ids = _people(db, matching)
    batch.dedupe(db, matching)
    return ids


def _only_review(client: Any) -> dict[str, Any]:
    reviews = client.get("/v1/reviews").json()
    assert len(reviews) == 1
    return reviews[0]


# --- API ---------------------------------------------------------------------------------


def test_the_api_lists_shows_and_accepts_a_pair(client: Any, queued: dict[str, int]) -> None:
    item = _only_review(client)
    assert (item["customer_a_id"], item["customer_b_id"]) == (queued["annett"], queued["annett2"])
    detail = client.get(f"/v1/reviews/{item['id']}").json()
    assert detail["explanation"]["steps"][0]["comparison"] == "prior"
    accepted = client.post(f"/v1/reviews/{item['id']}/accept")
    assert accepted.status_code == 200 and accepted.json()["merge_id"]
    assert client.get("/v1/reviews").json() == []
    assert client.get("/v1/reviews", params={"status": "accepted"}).json()[0]["id"] == item["id"]
    again = client.post(f"/v1/reviews/{item['id']}/reject")
    assert again.status_code == 409 and "not open" in again.json()["detail"]
    # Undone through the merge log like any merge.
    undo = client.post(f"/v1/merges/{accepted.json()['merge_id']}/undo")
    assert undo.status_code == 200


def test_the_api_rejects_and_answers_bad_input_with_4xx(
    client: Any, queued: dict[str, int]
) -> None:
    item = _only_review(client)
    assert client.post(f"/v1/reviews/{item['id']}/reject").json()["status"] == "rejected"
    assert client.get("/v1/reviews/99999").status_code == 404
    assert client.post("/v1/reviews/99999/accept").status_code == 404
    assert client.get("/v1/reviews/0").status_code == 422
    assert client.get("/v1/reviews", params={"status": "maybe"}).status_code == 422
    assert client.get("/v1/reviews", params={"limit": 0}).status_code == 422


def test_the_api_explains_a_pair(client: Any, queued: dict[str, int]) -> None:
    found = client.get(
        "/v1/matching/explain", params={"a": queued["lena"], "b": queued["paula"]}
    ).json()
    assert sum(s["weight"] + s["tf_adjustment"] for s in found["steps"]) == pytest.approx(
        found["match_weight"]
    )
    forename = next(s for s in found["steps"] if s["comparison"] == "forename")
    assert (forename["left"], forename["right"], forename["weight"] < 0) == ("lena", "paula", True)
    missing = client.get("/v1/matching/explain", params={"a": queued["lena"], "b": 10**12})
    assert missing.status_code == 404


def test_explaining_without_a_model_is_a_409_with_a_message(client: Any, db: Database) -> None:
    settings = Settings(database_url=db.url)
    make_source(db, "shop")
    a = put(db, settings, "shop", rec("a", first_name="Anna")).customer_of["a"]
    b = put(db, settings, "shop", rec("b", first_name="Berta")).customer_of["b"]
    found = client.get("/v1/matching/explain", params={"a": a, "b": b})
    assert found.status_code == 409 and "relata dedupe train" in found.json()["detail"]


# --- web ---------------------------------------------------------------------------------


def test_the_review_page_shows_both_records_their_differences_and_the_weights(
    client: Any, queued: dict[str, int]
) -> None:
    item = _only_review(client)
    listing = client.get("/reviews?lang=en")
    assert listing.status_code == 200 and f"/reviews/{item['id']}" in listing.text
    page = client.get(f"/reviews/{item['id']}?lang=en")
    assert page.status_code == 200
    html = page.text
    assert "Annett" in html and "Striebitz" in html
    assert 'class="differs"' in html  # the e-mail only one of them has
    assert "Match weights" in html and 'class="bar' in html
    decided = client.post(f"/reviews/{item['id']}/reject", follow_redirects=False)
    assert decided.status_code == 303 and decided.headers["location"].endswith("/reviews")
    assert client.get("/v1/reviews").json() == []
    german = client.get(f"/reviews/{item['id']}?lang=de").text
    assert "Übereinstimmungsgewichte" in german and "abgelehnt" in german


def test_an_unknown_review_page_is_a_404_page(client: Any, db: Database) -> None:
    for path in ("/reviews/123", "/reviews/abc", "/reviews/99999999999999999999999"):
        page = client.get(path, headers={"accept": "text/html"})
        assert page.status_code == 404 and "<html" in page.text


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def relata(db: Database, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RELATA_DATABASE_URL", db.url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output, result.stderr)
        return result

    yield run
    get_settings.cache_clear()


def test_the_cli_lists_and_decides(relata: Any, queued: dict[str, int]) -> None:
    rows = json.loads(relata("review", "list", "--json").stdout)
    assert [r["customer_b_id"] for r in rows] == [queued["annett2"]]
    accepted = json.loads(relata("review", "accept", str(rows[0]["id"]), "--json").stdout)
    assert accepted["status"] == "accepted" and accepted["merge_id"]
    failed = relata("review", "reject", str(rows[0]["id"]), code=1)
    assert failed.stderr.count("\n") == 1 and "not open" in failed.stderr
    assert "Traceback" not in failed.output
    explained = json.loads(
        relata("dedupe", "--explain", str(queued["juergen"]), str(queued["lena"]), "--json").stdout
    )
    assert explained["customers"] == [queued["juergen"], queued["lena"]]
    table = relata("dedupe", "--explain", str(queued["lena"]), str(queued["paula"])).stdout
    assert "first name" in table and "match weight" in table


def test_the_cli_says_in_one_line_what_is_missing(relata: Any) -> None:
    relata("init")
    no_model = relata("dedupe", code=1)
    assert (
        no_model.stderr.startswith("error: no matching model") and no_model.stderr.count("\n") == 1
    )
    unknown = relata("review", "accept", "7", code=1)
    assert unknown.stderr == "error: no review with id 7\n"
    bad = relata("review", "list", "--status", "maybe", code=1)
    assert "unknown status" in bad.stderr


def test_dedupe_from_the_cli_prints_a_summary(
    relata: Any,
    db: Database,
    matching: Settings,
) -> None:
    _people(db, matching)
    found = json.loads(relata("dedupe", "--json").stdout)
    assert found["merged"] >= 1 and found["compared"] > 0
    assert set(found["seconds"]) >= {"read", "compare", "cluster", "merge", "queue", "index"}


def test_the_explain_page_shows_any_two_customers(client: Any, queued: dict[str, int]) -> None:
    page = client.get(
        "/reviews/explain", params={"a": queued["father"], "b": queued["son"], "lang": "en"}
    )
    assert page.status_code == 200
    assert "How two customers match" in page.text and 'class="bar' in page.text
    assert 'class="differs"' in page.text  # the birth dates
    for params in ({"a": "x", "b": "1"}, {"a": queued["father"]}, {"a": "1", "b": "10000000"}):
        assert client.get("/reviews/explain", params=params).status_code == 404
