"""Value pools for the synthetic shop: Faker is called a few thousand times here, once,
and the generator then draws rows from these pools with numpy indices."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from faker import Faker

from phoenix.names import ascii_slug

LOCALES = ("en_US", "de_DE", "fr_FR", "nl_NL", "it_IT", "pl_PL", "es_ES")
COUNTRY = {"en_US": "US", "de_DE": "DE", "fr_FR": "FR", "nl_NL": "NL", "it_IT": "IT", "pl_PL": "PL", "es_ES": "ES"}
PHONE_PREFIX = {"en_US": "+1", "de_DE": "+49", "fr_FR": "+33", "nl_NL": "+31", "it_IT": "+39", "pl_PL": "+48", "es_ES": "+34"}
MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "web.de", "gmx.de", "orange.fr", "free.fr", "ziggo.nl",
                "libero.it", "wp.pl", "hotmail.es", "icloud.com", "proton.me", "t-online.de")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    "ShopApp/3.12 (Android 13)", "ShopApp/3.12 (iOS 17.3)",
)
TICKET_SUBJECTS = ("Where is my order?", "Refund request", "Wrong size delivered", "Change my address",
                   "Invoice needed", "Payment failed", "Account locked", "Damaged parcel")


def sql_escape(text: str) -> str:
    """The body of a single-quoted MariaDB string literal."""
    return (text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
            .replace("\r", "\\r").replace("\x00", "\\0").replace("\x1a", "\\Z"))


@dataclass
class LocalePool:
    locale: str
    first: list[str]
    last: list[str]
    first_slug: list[str]
    last_slug: list[str]
    street: list[str]
    city: list[str]
    postcode: list[str]
    iban: list[str]


@dataclass
class Pools:
    locales: list[LocalePool]
    products: list[str]


def _stable_order(fk: Faker) -> None:
    # it_IT builds its city list from a set: its order (and so the dump) changed with each
    # process's PYTHONHASHSEED; sorted, the same seed gives the same bytes (as in strategies.py).
    for p in fk.providers:
        if isinstance(getattr(p, "cities", None), list):
            p.cities = sorted(p.cities)


def build_pools(seed: int, size: int = 400) -> Pools:
    Faker.seed(seed)
    locales = []
    for loc in LOCALES:
        fk = Faker(loc)
        fk.seed_instance(seed)
        _stable_order(fk)
        first = [fk.first_name() for _ in range(size)]
        last = [fk.last_name() for _ in range(size)]
        locales.append(LocalePool(
            locale=loc, first=first, last=last,
            first_slug=[ascii_slug(x) for x in first], last_slug=[ascii_slug(x) for x in last],
            street=[fk.street_address() for _ in range(size)],
            city=[fk.city() for _ in range(size)],
            postcode=[fk.postcode() for _ in range(size)],
            iban=[fk.iban() for _ in range(size)],
        ))
    fk = Faker("en_US")
    fk.seed_instance(seed)
    adjectives = ["Classic", "Organic", "Vintage", "Smart", "Compact", "Deluxe", "Eco", "Ultra", "Handmade", "Urban"]
    nouns = ["Backpack", "Coffee Mug", "Desk Lamp", "Sneakers", "Rain Jacket", "Teapot", "Headphones", "Notebook",
             "Water Bottle", "Sunglasses", "Wool Scarf", "Yoga Mat", "Chef's Knife", "Phone Case"]
    products = [f"{a} {n} {fk.color_name()}" for a in adjectives for n in nouns]
    return Pools(locales=locales, products=products)


def json_profile(nickname: str, secondary_email: str | None, mobile: str | None, lang: str, newsletter: bool) -> str:
    return json.dumps({"nickname": nickname, "secondary_email": secondary_email, "mobile": mobile,
                       "preferences": {"language": lang, "newsletter": newsletter}}, ensure_ascii=False)


def phones(rng: np.random.Generator, prefixes: np.ndarray) -> list[str]:
    """Phone numbers like '+49 151 23456789', drawn vectorized."""
    a = rng.integers(100, 999, size=len(prefixes))
    b = rng.integers(1_000_000, 99_999_999, size=len(prefixes))
    return [f"{p} {x} {y}" for p, x, y in zip(prefixes, a.tolist(), b.tolist(), strict=True)]
