"""Production-like changes on a running shop source (tasks/sources/shop_schema.sql), for the
incremental cycle's tests and benchmark: new customers, orders with items and payments, and
logins; changed e-mails, phones and streets; customers erased with everything that is
theirs (as a right-to-erasure request does); new support tickets, if asked. Deterministic
per seed and source state; each change is its own transaction, as an application makes them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pymysql
from faker import Faker


@dataclass
class Churned:
    """What was changed, by kind; `erased`: the ids of the customers deleted."""

    counts: dict[str, int] = field(default_factory=dict)
    erased: list[int] = field(default_factory=list)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


def churn(conn: pymysql.Connection, fraction: float, seed: int = 1, tickets: bool = False) -> Churned:
    """Change about `fraction` of the customers (at least one of each kind)."""
    rng, fake = random.Random(seed), Faker("en_US")
    fake.seed_instance(seed)
    out = Churned()
    ids = [r[0] for r in _q(conn, "SELECT id FROM customers ORDER BY id")]
    n = max(1, round(fraction * len(ids)))
    chosen = rng.sample(ids, min(len(ids), 2 * n + n // 4 + 1))
    updated, erased = chosen[:n], chosen[n : n + max(1, n // 4)]
    for cid in updated:
        _update_customer(conn, rng, fake, cid)
        out.add("customers updated")
    products = [r[0] for r in _q(conn, "SELECT id FROM products ORDER BY id")]
    for _ in range(n):
        cid = rng.choice(ids)
        _order(conn, rng, fake, cid, products)
        out.add("orders")
        _q(conn, "INSERT INTO login_events (customer_id, ip, user_agent, success, `at`) VALUES (%s, %s, %s, 1, %s)",
           (cid, fake.ipv4_public(), "Mozilla/5.0 (churn)", fake.date_time_this_year()))
        out.add("logins")
    for _ in range(max(1, n // 2)):
        _new_customer(conn, fake)
        out.add("customers added")
    if tickets:
        for cid in updated[: max(1, n // 2)]:
            first, last, email = _q(conn, "SELECT first_name, last_name, email FROM customers WHERE id = %s", (cid,))[0]
            _q(conn, "INSERT INTO support_tickets (customer_id, subject, body, created_at) VALUES (%s, %s, %s, %s)",
               (cid, "Order question", f"Hello, this is {first} {last}. Please write to {email}.",
                fake.date_time_this_year()))
            out.add("tickets")
    for cid in [c for c in erased if c not in updated]:
        _erase(conn, cid)
        out.erased.append(cid)
        out.add("customers erased")
    return out


def _update_customer(conn, rng: random.Random, fake: Faker, cid: int) -> None:
    conn.begin()
    _q(conn, "UPDATE customers SET email = %s, phone = %s WHERE id = %s",
       (f"{fake.user_name()}.{cid}@{fake.free_email_domain()}", fake.phone_number()[:32], cid))
    _q(conn, "UPDATE addresses SET street = %s WHERE customer_id = %s", (fake.street_address()[:128], cid))
    conn.commit()


def _order(conn, rng: random.Random, fake: Faker, cid: int, products: list[int]) -> None:
    conn.begin()
    first, last, email = _q(conn, "SELECT first_name, last_name, email FROM customers WHERE id = %s", (cid,))[0]
    items = [(rng.choice(products), rng.randint(1, 3), rng.randint(100, 9000)) for _ in range(rng.randint(1, 3))]
    total = sum(q * p for _, q, p in items)
    at = fake.date_time_this_year()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO orders (customer_id, customer_name, customer_email, status, total_cents, ordered_at) "
                    "VALUES (%s, %s, %s, 'paid', %s, %s)", (cid, f"{first} {last}", email, total, at))
        oid = cur.lastrowid
        cur.executemany("INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents) "
                        "VALUES (%s, %s, %s, %s)", [(oid, p, q, c) for p, q, c in items])
        cur.execute("INSERT INTO payments (order_id, iban, account_holder, amount_cents, paid_at) "
                    "VALUES (%s, %s, %s, %s, %s)", (oid, fake.iban(), f"{first} {last}", total, at))
    conn.commit()


def _new_customer(conn, fake: Faker) -> None:
    conn.begin()
    first, last = fake.first_name(), fake.last_name()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO customers (first_name, last_name, email, phone, birth_date, locale, profile, "
                    "loyalty_points, created_at) VALUES (%s, %s, %s, %s, %s, 'en_US', NULL, 0, %s)",
                    (first, last, f"{first}.{last}.{_next_id(conn)}@{fake.free_email_domain()}".lower(),
                     fake.phone_number()[:32], fake.date_of_birth(minimum_age=18), fake.date_time_this_year()))
        cur.execute("INSERT INTO addresses (customer_id, kind, street, city, postcode, country) "
                    "VALUES (%s, 'billing', %s, %s, %s, 'US')",
                    (cur.lastrowid, fake.street_address()[:128], fake.city()[:64], fake.postcode()[:16]))
    conn.commit()


def _next_id(conn) -> int:
    """Makes a new customer's e-mail unique (a churn run twice with one seed draws the same names)."""
    return _q(conn, "SELECT COALESCE(MAX(id), 0) + 1 FROM customers")[0][0]


def _erase(conn, cid: int) -> None:
    """Everything of one customer, children first (orders do not cascade)."""
    conn.begin()
    email = _q(conn, "SELECT email FROM customers WHERE id = %s", (cid,))[0][0]
    _q(conn, "DELETE FROM newsletter_subscribers WHERE email = %s", (email,))
    _q(conn, "DELETE FROM support_tickets WHERE customer_id = %s", (cid,))
    _q(conn, "DELETE FROM orders WHERE customer_id = %s", (cid,))  # items and payments cascade
    _q(conn, "DELETE FROM customers WHERE id = %s", (cid,))  # addresses and logins cascade
    conn.commit()


def _q(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())
