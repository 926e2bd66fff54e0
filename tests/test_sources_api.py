"""Sources and the quarantine over HTTP."""

from __future__ import annotations

from pathlib import Path

from relata.ingest.service import import_file


def test_register_list_and_refuse_sources(client):
    created = client.post("/v1/sources", json={"name": "shop", "channel": "shop", "trust": 80})
    assert created.status_code == 201 and created.json()["trust"] == 80
    assert [s["name"] for s in client.get("/v1/sources").json()] == ["shop"]
    again = client.post("/v1/sources", json={"name": "shop", "channel": "shop"})
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    for body, needle in [
        ({"name": "fax", "channel": "fax"}, "unknown channel"),
        ({"name": "x", "channel": "web", "trust": 101}, "trust"),
        ({"name": "bad name!", "channel": "web"}, "invalid source name"),
        ({"channel": "web"}, "name"),
    ]:
        response = client.post("/v1/sources", json=body)
        assert response.status_code == 422, body
        assert needle in response.json()["detail"], (needle, response.json())


def test_quarantine_lists_refused_rows_with_line_and_reason(client, db, settings, tmp_path: Path):
    client.post("/v1/sources", json={"name": "pos", "channel": "pos"})
    path = tmp_path / "k.csv"
    path.write_bytes(
        "Kartennummer;Name;Geburtsdatum\n1;Groß;31.02.1980\n2;Klein;01.02.1980\n".encode("cp1252")
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        'source_key = "Kartennummer"\n[fields]\nlast_name = "Name"\nbirth_date = "Geburtsdatum"\n'
    )
    assert import_file(db, path, "pos", settings, mapping).quarantined == 1
    entries = client.get("/v1/quarantine", params={"source": "pos"}).json()
    assert len(entries) == 1
    assert entries[0]["line_no"] == 2 and "31.02.1980" in entries[0]["reason"]
    assert "Groß" in entries[0]["raw"]
    assert client.get("/v1/quarantine", params={"status": "resolved"}).json() == []
    assert client.get("/v1/quarantine", params={"status": "weird"}).status_code == 422
    assert client.get("/v1/quarantine", params={"source": "nope"}).status_code == 422
