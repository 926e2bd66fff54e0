"""Survivorship without a database."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from relata.profiles.survivorship import Candidate, golden, pack, unpack

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 6, 1, tzinfo=UTC)


def test_highest_trust_wins_then_most_recent():
    shop = Candidate("shop", "K1", 80, T1, {"first_name": "Anna", "email": "a@x.de"})
    news = Candidate("newsletter", "n", 40, T2, {"first_name": "Anne", "phone": "+49301"})
    g = golden([news, shop])
    assert g.values == {"first_name": "Anna", "email": "a@x.de", "phone": "+49301"}
    assert g.provenance["phone"]["source"] == "newsletter"
    recent = golden([news, shop], {"first_name": "recent"})
    assert recent.values["first_name"] == "Anne"


def test_an_address_is_taken_whole_and_complete_beats_trusted_fragment():
    shop = Candidate("shop", "K1", 80, T2, {"city": "Berlin"})
    pos = Candidate(
        "pos", "C1", 60, T1, {"street": "Hauptstraße", "house_number": "5", "city": "Köln"}
    )
    g = golden([shop, pos])
    assert (g.values["street"], g.values["city"]) == ("Hauptstraße", "Köln")
    assert g.provenance["city"]["source"] == "pos"


def test_the_result_does_not_depend_on_the_order_of_records():
    a = Candidate("a", "1", 50, T1, {"last_name": "Meier"})
    b = Candidate("b", "2", 50, T1, {"last_name": "Maier"})
    assert golden([a, b]) == golden([b, a])


origins = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["shop", "pos", "web"]),
        "source_key": st.text(max_size=8),
        "at": st.sampled_from([T1.isoformat(), T2.isoformat()]),
        "rule": st.sampled_from(["trust", "recent", "only"]),
    }
)


@given(st.dictionaries(st.sampled_from(["first_name", "email", "city", "phone"]), origins))
def test_packed_provenance_unpacks_to_the_same(provenance):
    assert unpack(pack(provenance)) == provenance
