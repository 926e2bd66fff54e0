"""Deterministic linking, without a database."""

from hypothesis import given
from hypothesis import strategies as st

from relata.identity.linking import LinkItem, Person, compatible, plan_links

STRONG = ["email", "customer_number", "loyalty_card", "anonymous_id"]
SHARED = ["email", "phone"]


def item(*ids: tuple[str, str], first=None, last=None, birth=None, current=None) -> LinkItem:
    return LinkItem(current, list(ids), Person(first, last, birth))


def plan(items, owners=None, persons=None):
    return plan_links(items, owners or {}, persons or {}, STRONG, SHARED)


def test_records_sharing_an_email_become_one_new_customer():
    p = plan(
        [
            item(("email", "a@x.de"), first="Anna"),
            item(("email", "a@x.de"), first="Anna"),
            item(("email", "b@x.de"), first="Bert"),
        ]
    )
    assert p.assign[0] == p.assign[1] != p.assign[2]
    assert len(p.new) == 2 and not p.merges


def test_a_record_joins_the_existing_owner_of_its_identifier():
    p = plan([item(("customer_number", "K1"))], owners={("customer_number", "K1"): {7}})
    assert p.assign == [7] and p.new == []


def test_a_family_email_does_not_link_two_different_first_names():
    p = plan(
        [
            item(("email", "familie@web.de"), first="Anna", last="Müller"),
            item(("email", "familie@web.de"), first="Peter", last="Müller"),
        ]
    )
    assert p.assign[0] != p.assign[1]


def test_a_nameless_record_on_an_ambiguous_family_email_links_to_no_one():
    p = plan(
        [item(("email", "familie@web.de"))],
        owners={("email", "familie@web.de"): {1, 2}},
        persons={1: Person("Anna", "Müller"), 2: Person("Peter", "Müller")},
    )
    assert p.assign[0] < 0 and not p.merges


def test_an_exclusive_identifier_links_even_when_names_differ():
    p = plan(
        [item(("customer_number", "K1"), first="Hans")],
        owners={("customer_number", "K1"): {3}},
        persons={3: Person("Johann", "Schmidt")},
    )
    assert p.assign == [3]


def test_identifiers_of_two_customers_merge_them_into_the_older():
    p = plan(
        [item(("email", "a@x.de"), ("customer_number", "K1"), first="Anna")],
        owners={("email", "a@x.de"): {9}, ("customer_number", "K1"): {4}},
        persons={9: Person("Anna"), 4: Person("Anna")},
    )
    assert p.assign == [4]
    assert [(s, m) for s, m, _ in p.merges] == [(4, 9)]


def test_a_typo_transliteration_or_initial_is_still_compatible():
    assert compatible(Person("Jürgen"), Person("Juergen"))
    assert compatible(Person("Michael"), Person("Micheal"))
    assert compatible(Person("J."), Person("Jürgen"))
    assert compatible(Person("Anna Maria"), Person("Anna"))


def test_different_birth_dates_are_different_people_unless_day_and_month_swapped():
    assert not compatible(
        Person("Hans", birth_date="1960-01-02"), Person("Hans", birth_date="1990-01-02")
    )
    assert compatible(
        Person("Hans", birth_date="1980-03-04"), Person("Hans", birth_date="1980-04-03")
    )


def test_swapped_first_and_last_names_are_compatible():
    assert compatible(Person("Müller", "Anna"), Person("Anna", "Müller"))
    assert not compatible(Person("Anna", "Müller"), Person("Peter", "Müller"))


def test_a_kind_that_is_not_strong_never_links():
    p = plan([item(("phone", "+4930123")), item(("phone", "+4930123"))])  # STRONG lacks phone
    assert p.assign[0] != p.assign[1]


def test_a_shared_phone_links_the_same_person_but_not_the_family():
    strong = [*STRONG, "phone"]
    same = plan_links(
        [item(("phone", "+4930123"), first="Anna"), item(("phone", "+4930123"), first="Anna")],
        {},
        {},
        strong,
        SHARED,
    )
    assert same.assign[0] == same.assign[1]
    family = plan_links(
        [item(("phone", "+4930123"), first="Anna"), item(("phone", "+4930123"), first="Peter")],
        {},
        {},
        strong,
        SHARED,
    )
    assert family.assign[0] != family.assign[1]


def test_a_value_three_customers_share_links_no_one():
    owners = {("phone", "+4930000"): {1, 2, 3}}
    persons = {1: Person("Anna"), 2: Person("Bert"), 3: Person("Carl")}
    p = plan_links(
        [item(("phone", "+4930000"), first="Anna")], owners, persons, [*STRONG, "phone"], SHARED
    )
    assert p.assign[0] < 0
    # Below the threshold the compatible owner is found as usual.
    two = {("phone", "+4930000"): {1, 2}}
    p = plan_links(
        [item(("phone", "+4930000"), first="Anna")], two, persons, [*STRONG, "phone"], SHARED
    )
    assert p.assign == [1]


def test_a_nameless_record_on_a_family_address_links_to_no_one():
    owners = {("email", "familie.mueller@web.de"): {1}}
    persons = {1: Person("Anna", "Müller")}
    nameless = plan([item(("email", "familie.mueller@web.de"))], owners, persons)
    assert nameless.assign[0] < 0
    named = plan([item(("email", "familie.mueller@web.de"), first="Anna")], owners, persons)
    assert named.assign == [1]
    # Nor does a named record join a nameless customer through a family address.
    unnamed = plan(
        [item(("email", "familie.mueller@web.de"), first="Anna")],
        owners,
        {1: Person()},
    )
    assert unnamed.assign[0] < 0
    # An ordinary personal address still links a nameless newsletter sign-up.
    personal = plan([item(("email", "anna@web.de"))], {("email", "anna@web.de"): {1}}, persons)
    assert personal.assign == [1]


ids = st.lists(
    st.tuples(st.sampled_from(["email", "customer_number", "phone"]), st.sampled_from("abcde")),
    max_size=3,
)
people = st.builds(
    Person,
    st.sampled_from([None, "Anna", "Peter", "Anne"]),
    st.sampled_from([None, "Müller"]),
    st.sampled_from([None, "1980-01-02", "1990-05-06"]),
)


@given(st.lists(st.tuples(ids, people), max_size=12))
def test_records_sharing_an_exclusive_identifier_always_end_up_together(rows):
    items = [
        item(*keys, first=p.first_name, last=p.last_name, birth=p.birth_date) for keys, p in rows
    ]
    result = plan(items)
    owner: dict[tuple[str, str], int] = {}
    for (keys, _), ref in zip(rows, result.assign, strict=True):
        for key in keys:
            if key[0] == "customer_number":
                assert owner.setdefault(key, ref) == ref
    # Every assigned ref is either new (and listed) or existing; no merges of new refs.
    assert set(result.assign) == set(result.new)
    assert not result.merges
