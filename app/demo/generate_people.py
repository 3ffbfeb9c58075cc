"""Generated drivers for ``flask demo generate``: accounts with Belgian and Dutch names and addresses, one driver
login each, a plan stretch, and cards in every state (ordered, shipped, active, blocked, expired; RFID cards
with the stock card they came from, app tokens), numbered as ``cards.services`` numbers them: an eMAID minted for
our party (``cards.emaid.mint_emaid``, from the seeded generator), uids stored upper-case."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from flask import current_app

from app.accounts.models import Account, User
from app.cards import emaid
from app.cards.models import Card, StockCard
from app.demo import generate_catalogue as catalogue
from app.demo.generate_base import CHUNK_ROWS, GenerateOptions, Writer, table, weighted_cities
from app.plans.models import Subscription

GENERATED_EMAIL_DOMAIN = "generated.demo.invalid"
BUSINESS_SHARE = 0.08
ENGLISH_SHARE = 0.04
APP_FIRST_SHARE = 0.10  # accounts whose first token is the app, not a card
# The states of a second or later card, and their weights.
LATER_STATES = ("active", "blocked", "expired", "ordered", "shipped")
LATER_WEIGHTS = (62, 10, 10, 10, 8)
BLOCK_REASONS = ("lost", "stolen", "payment", "support")


@dataclass
class Drivers:
    """The active tokens sessions can be made with (parallel arrays, compact at a million cards)."""

    first_account_id: int = 0
    card_ids: array[int] = field(default_factory=lambda: array("q"))
    account_ids: array[int] = field(default_factory=lambda: array("q"))
    cities: array[int] = field(default_factory=lambda: array("h"))
    uids: list[str] = field(default_factory=list)
    contract_ids: list[str] = field(default_factory=list)
    app_tokens: list[bool] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # how often each token charges (a long tail)

    def cumulative_weights(self) -> list[float]:
        return list(accumulate(self.weights))


def ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if char.isascii() and char.isalnum()).lower()


def belgian_vat_number(rng: random.Random) -> str:
    """BE0 + 7 digits + the mod-97 check of the 8-digit number."""
    base = rng.randint(2_000_000, 9_999_999)
    return f"BE0{base:07d}{97 - base % 97:02d}"


def dutch_vat_number(rng: random.Random) -> str:
    """NL + 9 digits passing the eleven test (weights 9..2, minus the last) + B01."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        digits[0] = digits[0] or 1
        last = sum(digit * weight for digit, weight in zip(digits, range(9, 1, -1), strict=True)) % 11
        if last < 10:
            return "NL" + "".join(map(str, digits)) + str(last) + "B01"


class EmaidMinter:
    """``cards.emaid.mint_emaid`` at a hundredth of its cost (0.4 ms an id is a minute per 150,000 cards).

    The check digit is linear in the characters (``emaid.compute_check_digit``): each position adds a fixed row
    over F2 and over F3 per character, so the sums are table lookups, and the 36 possible sums map to the check
    character through the module's own functions. The first id is checked against ``mint_emaid``'s rule
    (``Emaid`` validates on construction), and the tests parse every generated id."""

    def __init__(self, country: str, provider: str) -> None:
        self.prefix = f"{country}-{provider}-{emaid.MINTED_INSTANCE_PREFIX}"
        fixed = country + provider + emaid.MINTED_INSTANCE_PREFIX
        self.tables = [{char: self._contribution(position, char) for char in emaid.ALPHABET} for position in range(14)]
        self.start = [0, 0, 0, 0]
        for position, char in enumerate(fixed):
            self.start = [a + b for a, b in zip(self.start, self.tables[position][char], strict=True)]
        self.offset = len(fixed)
        self.checked = False

    @staticmethod
    def _contribution(position: int, char: str) -> tuple[int, int, int, int]:
        # The module's own (private) matrices and tables, not a copy of them: one algorithm, one place.
        binary, ternary = emaid._char_to_rows(char)
        b = emaid._row_times(binary, emaid._P1_POWERS[position], 2)
        t = emaid._row_times(ternary, emaid._P2_POWERS[position], 3)
        return (b[0], b[1], t[0], t[1])

    def mint(self, rng: random.Random) -> str:
        instance = "".join(rng.choices(emaid.ALPHABET, k=emaid.MINTED_RANDOM_LENGTH))
        b0, b1, t0, t1 = self.start
        for position, char in enumerate(instance, start=self.offset):
            c0, c1, c2, c3 = self.tables[position][char]
            b0, b1, t0, t1 = b0 + c0, b1 + c1, t0 + c2, t1 + c3
        ternary = emaid._row_times((t0 % 3, t1 % 3), emaid._MINUS_P2_INVERSE_15, 3)
        check = emaid._rows_to_char((b0 % 2, b1 % 2), ternary)
        contract_id = f"{self.prefix}{instance}-{check}"
        if not self.checked:
            emaid.parse_emaid(contract_id)  # raises if the tables disagree with the module
            self.checked = True
        return contract_id


def generate_people(
    writer: Writer,
    rng: random.Random,
    options: GenerateOptions,
    plans: dict[str, int],
    password_hash: str,
    *,
    since: dt.datetime,
    generated_at: dt.datetime,
) -> Drivers:
    drivers = Drivers()
    contract_ids: set[str] = set()
    uids: set[str] = set()
    config = current_app.config
    country_code, party_id, issuer = config["COMPANY_COUNTRY_CODE"], config["COMPANY_PARTY_ID"], config["COMPANY_NAME"]
    average = options.cards_per_account
    whole, fraction = int(average), float(average - int(average))

    minter = EmaidMinter(country_code, party_id)

    def contract_id() -> str:
        while True:
            candidate = minter.mint(rng)
            if candidate not in contract_ids:
                contract_ids.add(candidate)
                return candidate

    def rfid_uid() -> str:
        while True:  # 7-byte NXP uids ("04" + 6 bytes), as most cards carry
            candidate = f"04{rng.getrandbits(48):012X}"
            if candidate not in uids:
                uids.add(candidate)
                return candidate

    for block_start in range(0, options.accounts, CHUNK_ROWS // 2):
        size = min(CHUNK_ROWS // 2, options.accounts - block_start)
        first_account = writer.first_id(table(Account), size)
        first_user = writer.first_id(table(User), size)
        first_subscription = writer.first_id(table(Subscription), size)
        if block_start == 0:
            drivers.first_account_id = first_account
        accounts, users, subscriptions, cards, stock = [], [], [], [], []
        for offset, city_index in enumerate(weighted_cities(rng, size)):
            city = catalogue.CITIES[city_index]
            account_id = first_account + offset
            language = "en" if rng.random() < ENGLISH_SHARE else rng.choice(city.languages)
            names_language = "nl" if city.country == "NL" else language
            first_name = rng.choice(catalogue.FIRST_NAMES[names_language])
            last_name = rng.choice(catalogue.LAST_NAMES[city.country])
            created = since - dt.timedelta(days=rng.randint(45, 1_100), seconds=rng.randint(0, 86_399))
            business = rng.random() < BUSINESS_SHARE
            company = None
            if business:
                suffix = rng.choice(catalogue.COMPANY_SUFFIXES[city.country])
                company = f"{last_name} {rng.choice(catalogue.COMPANY_WORDS)} {suffix}"
            street_language = language if language in catalogue.STREETS else "nl"
            accounts.append(
                {
                    "id": account_id,
                    "full_name": f"{first_name} {last_name}",
                    "street": f"{rng.choice(catalogue.STREETS[street_language])} {rng.randint(1, 240)}",
                    "postal_code": str(rng.randint(*city.postal_codes)),
                    "city": city.name,
                    "country": city.country,
                    "language": language,
                    "company_name": company,
                    "vat_number": (belgian_vat_number if city.country == "BE" else dutch_vat_number)(rng)
                    if business
                    else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            users.append(
                {
                    "id": first_user + offset,
                    "email": f"{ascii_slug(first_name)}.{ascii_slug(last_name)}.{account_id}@{GENERATED_EMAIL_DOMAIN}",
                    "password_hash": password_hash,
                    "role": "driver",
                    "active": True,
                    "email_confirmed_at": created,
                    "session_version": 1,
                    "account_id": account_id,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if business:
                plan = "business" if rng.random() < 0.7 else "comfort"
            else:
                plan = "payg" if rng.random() < 0.65 else "comfort"
            subscriptions.append(
                {
                    "id": first_subscription + offset,
                    "account_id": account_id,
                    "plan_id": plans[plan],
                    "starts_at": created,
                    "ends_at": None,
                    "created_at": created,
                    "created_by": "demo-generate",
                }
            )
            count = whole + (1 if rng.random() < fraction else 0)
            for number in range(count):
                state = "active" if number == 0 else rng.choices(LATER_STATES, weights=LATER_WEIGHTS)[0]
                app_token = state == "active" and rng.random() < (APP_FIRST_SHARE if number == 0 else 0.3)
                card = _card(rng, account_id, state, app_token, created, since, generated_at, issuer)
                if state != "ordered":
                    card["uid"] = f"{rng.getrandbits(128):032X}" if app_token else rfid_uid()
                    card["contract_id"] = contract_id()
                if business:
                    card["driver_name"] = f"{first_name} {last_name}"
                cards.append(card)
                if state == "active":
                    drivers.account_ids.append(account_id)
                    drivers.cities.append(city_index)
                    drivers.uids.append(card["uid"])
                    drivers.contract_ids.append(card["contract_id"])
                    drivers.app_tokens.append(app_token)
                    # A long tail: most drivers charge a few times a month, some every day.
                    drivers.weights.append(rng.paretovariate(1.6))
        first_card = writer.first_id(table(Card), len(cards))
        for offset, card in enumerate(cards):
            card["id"] = first_card + offset
            if card["uid"] is not None and card["token_type"] == "RFID":
                card["visual_number"] = f"{party_id}-G{card['id']:09d}"
                stock.append(
                    {
                        "uid": card["uid"],
                        "visual_number": card["visual_number"],
                        "batch": "demo-generate",
                        "imported_at": card["ordered_at"] - dt.timedelta(days=30),
                        "assigned_at": card["shipped_at"],
                    }
                )
            if card["status"] == "active":
                drivers.card_ids.append(card["id"])
        first_stock = writer.first_id(table(StockCard), len(stock))
        for offset, row in enumerate(stock):
            row["id"] = first_stock + offset
        writer.write(table(Account), accounts)
        writer.write(table(User), users)
        writer.write(table(Subscription), subscriptions)
        writer.write(table(StockCard), stock)
        writer.write(table(Card), cards)
    return drivers


def _card(
    rng: random.Random,
    account_id: int,
    state: str,
    app_token: bool,
    created: dt.datetime,
    since: dt.datetime,
    generated_at: dt.datetime,
    issuer: str,
) -> dict[str, Any]:
    """One card's row in ``state``, with its dates in order (ordered, shipped, activated, blocked or expired)."""
    if state in ("ordered", "shipped"):  # recent: ordered during the generated months
        ordered = since + (generated_at - since) * rng.random()
    else:
        ordered = created + dt.timedelta(hours=rng.randint(0, 48))
    shipped = None if state == "ordered" or app_token else ordered + dt.timedelta(days=rng.randint(1, 3))
    activated = None
    if state in ("active", "blocked", "expired"):
        activated = ordered if app_token else (shipped or ordered) + dt.timedelta(days=rng.randint(1, 6))
    blocked = None
    if state == "blocked":
        blocked = since + (generated_at - since) * rng.random()
    expires = None
    if state == "expired":
        expires = since - dt.timedelta(days=rng.randint(1, 30))
    changed = max(moment for moment in (ordered, shipped, activated, blocked, expires) if moment is not None)
    return {
        "account_id": account_id,
        "token_type": "APP_USER" if app_token else "RFID",
        "status": state,
        "uid": None,
        "contract_id": None,
        "visual_number": None,
        "issuer": issuer,
        "whitelist": "ALLOWED",
        "language": None,
        "label": "App" if app_token else None,
        "driver_name": None,
        "block_reason": rng.choice(BLOCK_REASONS) if state == "blocked" else None,
        "replaces_card_id": None,
        "ordered_at": ordered,
        "shipped_at": shipped,
        "activated_at": activated,
        "blocked_at": blocked,
        "expires_at": expires,
        "last_updated": changed,
    }
