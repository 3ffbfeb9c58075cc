"""Support search finds a surname, a contract id typed without its dashes or in lower case, and says what it
matched on (as a code the page puts in words)."""

from __future__ import annotations

import re

from app.accounts.models import Role
from app.audit.services import Actor
from app.cards import services as card_services
from app.customer_care.search import (
    MATCH_CARD_NUMBER,
    MATCH_CARD_UID,
    MATCH_CONTRACT_ID,
    MATCH_CUSTOMER_NUMBER,
    MATCH_EMAIL,
    MATCH_NAME,
    contract_id_prefixes,
    search_accounts,
)
from tests.factories import add_stock, give_payment_method, login, make_user


def _driver_with_card(**profile):  # type: ignore[no-untyped-def]
    user = make_user(**profile)
    give_payment_method(user.account)
    add_stock(1, start=70_000 + user.id * 10)
    card = card_services.ship_card(card_services.order_card(user.account, Actor.of(user)), Actor.system("ops"))
    return user, card


def _found(query: str) -> dict[int, str]:
    return {hit.account.id: hit.matched_on for hit in search_accounts(query)}


def test_a_surname_finds_the_account_whatever_comes_before_it(db_session):
    eva = make_user(full_name="Eva Peeters")
    anne = make_user(full_name="Anne-Marie Claes-Peeters")
    jan = make_user(full_name="Jan Janssens")
    assert _found("Peeters") == {eva.account.id: MATCH_NAME, anne.account.id: MATCH_NAME}
    assert _found("peet") == {eva.account.id: MATCH_NAME, anne.account.id: MATCH_NAME}
    assert _found("Marie") == {anne.account.id: MATCH_NAME}  # a later part of a double first name
    assert _found("eva peeters") == {eva.account.id: MATCH_NAME}
    assert jan.account.id not in _found("Peeters")


def test_a_word_inside_a_name_must_start_a_word_and_wildcards_stay_literal(db_session):
    make_user(full_name="Bart Vanpeeters")
    make_user(full_name="Percy Plant")
    assert _found("peeters") == {}  # "Vanpeeters" does not start with it
    assert _found("%%") == {} and _found("_a") == {}


def test_a_contract_id_is_found_without_dashes_and_in_lower_case(db_session):
    user, card = _driver_with_card()
    contract = card.contract_id  # BE-VLT-C12345678-9
    assert re.fullmatch(r"BE-VLT-C[0-9A-Z]{8}-[0-9A-Z]", contract)
    compact = contract.replace("-", "")
    for typed in (contract, contract.lower(), compact, compact.lower(), compact[:9].lower(), "be vlt " + compact[5:12]):
        hits = search_accounts(typed)
        assert [(hit.account.id, hit.matched_on, hit.matched_value) for hit in hits] == [
            (user.account.id, MATCH_CONTRACT_ID, contract)
        ], typed


def test_contract_id_prefixes_put_the_dashes_where_an_emaid_has_them():
    assert contract_id_prefixes("bevltc123456789") == {"BEVLTC123456789", "BE-VLT-C12345678-9"}
    assert contract_id_prefixes("BEV") == {"BEV", "BE-V"}
    assert contract_id_prefixes("be-vlt-c1") == {"BE-VLT-C1"}
    assert contract_id_prefixes("BEVLTC123456789XYZ") == {"BEVLTC123456789XYZ"}  # longer than any eMAID


def test_every_hit_says_what_it_matched_on(db_session):
    user, card = _driver_with_card(full_name="Zoë Vermeulen", email="zoe.vermeulen@example.com")
    assert _found("zoe.verm") == {user.account.id: MATCH_EMAIL}
    assert _found("Zoë") == {user.account.id: MATCH_NAME}
    assert _found(card.uid[:6].lower()) == {user.account.id: MATCH_CARD_UID}
    assert _found(card.visual_number.lower()) == {user.account.id: MATCH_CARD_NUMBER}
    assert _found(str(user.account.id)) == {user.account.id: MATCH_CUSTOMER_NUMBER}
    assert _found(f"{user.account.id:08d}") == {user.account.id: MATCH_CUSTOMER_NUMBER}


def test_bad_input_finds_nothing_and_never_fails(db_session):
    _driver_with_card()
    assert search_accounts("::") == []  # nothing left of a card number: not "every card"
    assert search_accounts("9" * 40) == []  # no customer number is that long (and the database is not asked)
    assert search_accounts("x" * 10_000) == []


def test_the_search_page_says_matched_on_in_the_agents_language(client):
    user, card = _driver_with_card(full_name="Eva Peeters")
    login(client, make_user(Role.SUPPORT))
    compact = card.contract_id.replace("-", "").lower()
    english = client.get("/backoffice/support/", query_string={"q": compact}).get_data(as_text=True)
    assert f"/backoffice/support/accounts/{user.account.id}" in english
    assert 'data-matched-on="contract_id"><small class="muted">Contract ID</small>' in english
    dutch = client.get("/backoffice/support/", query_string={"q": "Peeters", "lang": "nl"}).get_data(as_text=True)
    assert 'data-matched-on="name"><small class="muted">Naam</small>' in dutch
    french = client.get("/backoffice/support/", query_string={"q": compact, "lang": "fr"}).get_data(as_text=True)
    assert 'data-matched-on="contract_id"><small class="muted">ID de contrat</small>' in french
