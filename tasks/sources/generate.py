"""A production-like dump of a shop database, for demos, tests and benchmarks.

`generate(out, scale, seed)` writes what `mysqldump shop` would: SET header,
DROP/CREATE TABLE, LOCK TABLES, extended INSERTs of ~1 MB, then the trigger and the
view — and no CREATE DATABASE/USE, so it restores into any database. The schema is
`shop_schema.sql`; the anonymization rules in `anonymization/rules/shop.yaml` are
written against it.

Rows per unit of `--scale`: customers 1,000 · addresses 1,500 · orders 3,000 ·
order_items 7,500 · payments 2,700 · newsletter_subscribers 700 (70 % of them
customers' e-mails) · support_tickets 300 · login_events 6,000; products 200 + scale.
That is about 2.07 MB of SQL per unit (measured): scale 500 ≈ 1.03 GB.

Faker builds value pools once (`_gen_pools`); rows are drawn from them with numpy,
so the cost per row is a string format, never a Faker call. Same seed, same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from phoenix.errors import GenerateError
from tasks.sources._gen_pools import (
    COUNTRY,
    MAIL_DOMAINS,
    PHONE_PREFIX,
    TICKET_SUBJECTS,
    USER_AGENTS,
    build_pools,
    json_profile,
    phones,
    sql_escape,
)

SCHEMA = Path(__file__).with_name("shop_schema.sql")
PER_SCALE = {"customers": 1000, "addresses": 1500, "orders": 3000, "order_items": 7500, "payments": 2700,
             "newsletter_subscribers": 700, "support_tickets": 300, "login_events": 6000}
_CHUNK = 20_000
_INSERT_BYTES = 1 << 20
_EPOCH = np.datetime64("2019-01-01T00:00:00")
_SPAN_S = 6 * 365 * 86400

TRIGGER = (
    "DELIMITER ;;\n"
    "/*!50003 CREATE TRIGGER `orders_after_insert` AFTER INSERT ON `orders` FOR EACH ROW "
    "UPDATE customers SET loyalty_points = loyalty_points + NEW.total_cents DIV 100 "
    "WHERE id = NEW.customer_id */;;\n"
    "DELIMITER ;\n"
)


@dataclass
class GenerateReport:
    path: Path
    bytes_uncompressed: int
    rows: dict[str, int]


def _open(path: Path) -> tuple[Path, BinaryIO, Callable[[], None]]:
    name = path.name
    if not (name.endswith(".sql") or name.endswith(".sql.gz") or name.endswith(".sql.zst")):
        raise GenerateError(f"--out {path}: unknown format; use a name ending in .sql, .sql.gz or .sql.zst")
    if not path.parent.is_dir():
        raise GenerateError(f"--out {path}: directory {path.parent} does not exist; create it first")
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    try:
        raw = open(tmp, "wb")
    except OSError as exc:
        raise GenerateError(f"--out {path}: cannot write there ({exc.strerror}); choose a writable path") from None
    if name.endswith(".gz"):
        # mtime=0: the same seed gives the same bytes
        gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0)
        return tmp, gz, lambda: (gz.close(), raw.close())  # type: ignore[return-value]
    if name.endswith(".zst"):
        import zstandard

        zw = zstandard.ZstdCompressor(level=3, threads=2).stream_writer(raw, closefd=True)
        return tmp, zw, zw.close  # type: ignore[return-value]
    return tmp, raw, raw.close


class _Out:
    """Counts uncompressed bytes and buffers writes into big blocks."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.count = sink, 0
        self.buf = io.StringIO()

    def write(self, text: str) -> None:
        self.buf.write(text)
        if self.buf.tell() > (4 << 20):
            self.flush()

    def flush(self) -> None:
        data = self.buf.getvalue().encode()
        self.sink.write(data)
        self.count += len(data)
        self.buf = io.StringIO()


def _tables() -> dict[str, str]:
    """CREATE TABLE statements by table name, and the view, from shop_schema.sql."""
    text = re.sub(r"--[^\n]*", "", SCHEMA.read_text())
    out = {}
    for stmt in (s.strip() for s in text.split(";")):
        m = re.match(r"CREATE (?:TABLE|VIEW) `(\w+)`", stmt)
        if m:
            out[m.group(1)] = stmt
    return out


def _dates(rng: np.random.Generator, n: int, start: np.datetime64 = _EPOCH, span: int = _SPAN_S) -> list[str]:
    secs = rng.integers(0, span, size=n)
    return np.datetime_as_string(start + secs.astype("timedelta64[s]"), unit="s").astype(str).tolist()


def _inserts(out: _Out, table: str, rows: Iterator[list[str]]) -> int:
    """Extended INSERTs of about 1 MB each, like mysqldump --extended-insert."""
    n = 0
    head = f"INSERT INTO `{table}` VALUES "
    for chunk in rows:
        n += len(chunk)
        stmt: list[str] = []
        size = 0
        for row in chunk:
            stmt.append(row)
            size += len(row)
            if size > _INSERT_BYTES:
                out.write(head + ",".join(stmt) + ";\n")
                stmt, size = [], 0
        if stmt:
            out.write(head + ",".join(stmt) + ";\n")
    return n


def _chunks(total: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, total, _CHUNK):
        yield lo, min(total, lo + _CHUNK)


def generate(out_path: Path, scale: int = 1, seed: int = 42, progress: Callable[[str, int], None] | None = None) -> GenerateReport:
    if not isinstance(scale, int) or scale < 1:
        raise GenerateError(f"--scale {scale}: must be a whole number >= 1")
    out_path = Path(out_path)
    tmp, sink, close = _open(out_path)
    ok = False
    try:
        out = _Out(sink)
        rows = _write(out, scale, seed, progress or (lambda _t, _n: None))
        out.flush()
        close()
        os.replace(tmp, out_path)
        ok = True
        return GenerateReport(out_path, out.count, rows)
    finally:
        if not ok:
            with contextlib.suppress(Exception):
                close()
            tmp.unlink(missing_ok=True)


def _write(out: _Out, scale: int, seed: int, progress: Callable[[str, int], None]) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    pools = build_pools(seed)
    ddl = _tables()
    n = {t: k * scale for t, k in PER_SCALE.items()}
    n["products"] = 200 + scale
    out.write(
        "-- Phoenix synthetic shop dump (phoenix generate)\n"
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n"
        "/*!40101 SET NAMES utf8mb4 */;\n"
        "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n"
        "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n"
        "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n"
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"
        "/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n\n"
    )
    rows: dict[str, int] = {}
    order = ["customers", "addresses", "products", "orders", "order_items", "payments",
             "newsletter_subscribers", "support_tickets", "login_events"]
    state: dict = {}
    for table in order:
        out.write(f"--\n-- Table structure for table `{table}`\n--\n\nDROP TABLE IF EXISTS `{table}`;\n"
                  f"{ddl[table]};\n\n"
                  f"LOCK TABLES `{table}` WRITE;\n/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;\n")
        gen = _ROWS[table]
        rows[table] = _inserts(out, table, gen(rng, pools, n, state))
        out.write(f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;\nUNLOCK TABLES;\n\n")
        if table == "orders":
            out.write(TRIGGER + "\n")
        progress(table, rows[table])
    out.write(f"DROP VIEW IF EXISTS `customer_order_totals`;\n{ddl['customer_order_totals']};\n\n")
    out.write(
        "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
        "/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n"
        "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n"
        "-- Dump completed\n"
    )
    return rows


# -- rows per table ---------------------------------------------------------------------
def _customers(rng, pools, n, state) -> Iterator[list[str]]:
    total = n["customers"]
    nloc = len(pools.locales)
    size = len(pools.locales[0].first)
    loc = rng.integers(0, nloc, size=total)
    fi = rng.integers(0, size, size=total)
    li = rng.integers(0, size, size=total)
    dom = rng.integers(0, len(MAIL_DOMAINS), size=total)
    names, emails, phone_list = [], [], []
    for lo, hi in _chunks(total):
        chunk = []
        created = _dates(rng, hi - lo)
        births = _dates(rng, hi - lo, np.datetime64("1940-01-01T00:00:00"), 66 * 365 * 86400)
        no_birth = rng.random(hi - lo) < 0.05
        no_phone = rng.random(hi - lo) < 0.1
        pts = rng.integers(0, 5000, size=hi - lo).tolist()
        second = rng.random(hi - lo) < 0.3
        news = rng.random(hi - lo) < 0.5
        prefixes = np.array([PHONE_PREFIX[pools.locales[k].locale] for k in loc[lo:hi]])
        ph = phones(rng, prefixes)
        mob = phones(rng, prefixes)
        for j, i in enumerate(range(lo, hi)):
            p = pools.locales[loc[i]]
            first, last = p.first[fi[i]], p.last[li[i]]
            email = f"{p.first_slug[fi[i]]}.{p.last_slug[li[i]]}{i + 1}@{MAIL_DOMAINS[dom[i]]}"
            names.append(f"{first} {last}")
            emails.append(email)
            phone = None if no_phone[j] else ph[j]
            phone_list.append(phone or mob[j])
            profile = json_profile(f"{p.first_slug[fi[i]]}{i % 97}",
                                   f"{p.last_slug[li[i]]}.{i + 1}@{MAIL_DOMAINS[(dom[i] + 3) % len(MAIL_DOMAINS)]}"
                                   if second[j] else None, mob[j], p.locale[:2], bool(news[j]))
            chunk.append(
                f"({i + 1},'{sql_escape(first)}','{sql_escape(last)}','{email}',"
                f"{'NULL' if phone is None else repr(phone)},{'NULL' if no_birth[j] else repr(births[j][:10])},"
                f"'{p.locale}','{sql_escape(profile)}',{pts[j]},'{created[j].replace('T', ' ')}')"
            )
        yield chunk
    state.update(names=names, emails=emails, phones=phone_list, loc=loc, fi=fi, li=li)


def _addresses(rng, pools, n, state) -> Iterator[list[str]]:
    total, ncust = n["addresses"], n["customers"]
    cust = np.concatenate([np.arange(ncust), rng.integers(0, ncust, size=total - ncust)])
    size = len(pools.locales[0].street)
    si, ci, pi = (rng.integers(0, size, size=total) for _ in range(3))
    for lo, hi in _chunks(total):
        chunk = []
        for i in range(lo, hi):
            c = int(cust[i])
            p = pools.locales[state["loc"][c]]
            chunk.append(f"({i + 1},{c + 1},'{'billing' if i < ncust else 'shipping'}','{sql_escape(p.street[si[i]])}',"
                         f"'{sql_escape(p.city[ci[i]])}','{sql_escape(p.postcode[pi[i]])}','{COUNTRY[p.locale]}')")
        yield chunk


def _products(rng, pools, n, state) -> Iterator[list[str]]:
    total = n["products"]
    price = rng.integers(199, 49999, size=total).tolist()
    stock = rng.integers(0, 500, size=total).tolist()
    state["price"] = price
    yield [f"({i + 1},'SKU-{i + 1:07d}','{sql_escape(pools.products[i % len(pools.products)])}"
           f"{'' if i < len(pools.products) else f' #{i // len(pools.products)}'}',{price[i]},{stock[i]})"
           for i in range(total)]


def _orders(rng, pools, n, state) -> Iterator[list[str]]:
    total, ncust = n["orders"], n["customers"]
    # A few customers order a lot: a Zipf-like skew, as in real shops.
    cust = (rng.pareto(1.2, size=total) * ncust / 20).astype(np.int64) % ncust
    statuses = np.array(["new", "paid", "shipped", "cancelled", "refunded"])
    st = statuses[rng.choice(5, size=total, p=[0.05, 0.25, 0.6, 0.07, 0.03])]
    totals = rng.integers(500, 80000, size=total).tolist()
    state["order_cust"], state["order_total"] = cust, totals
    for lo, hi in _chunks(total):
        when = _dates(rng, hi - lo)
        yield [f"({i + 1},{int(cust[i]) + 1},'{sql_escape(state['names'][cust[i]])}','{state['emails'][cust[i]]}',"
               f"'{st[i]}',{totals[i]},'{when[i - lo].replace('T', ' ')}')" for i in range(lo, hi)]


def _order_items(rng, pools, n, state) -> Iterator[list[str]]:
    total, norders, nprod = n["order_items"], n["orders"], n["products"]
    order = np.sort(np.concatenate([np.arange(norders), rng.integers(0, norders, size=total - norders)]))
    prod = rng.integers(0, nprod, size=total)
    qty = rng.integers(1, 5, size=total).tolist()
    price = state["price"]
    for lo, hi in _chunks(total):
        yield [f"({i + 1},{int(order[i]) + 1},{int(prod[i]) + 1},{qty[i]},{price[prod[i]]})" for i in range(lo, hi)]


def _payments(rng, pools, n, state) -> Iterator[list[str]]:
    total, norders = n["payments"], n["orders"]
    order = np.sort(rng.choice(norders, size=total, replace=False))
    size = len(pools.locales[0].iban)
    ib = rng.integers(0, size, size=total)
    for lo, hi in _chunks(total):
        when = _dates(rng, hi - lo)
        chunk = []
        for i in range(lo, hi):
            o = int(order[i])
            c = int(state["order_cust"][o])
            p = pools.locales[state["loc"][c]]
            chunk.append(f"({i + 1},{o + 1},'{p.iban[ib[i]]}','{sql_escape(state['names'][c])}',"
                         f"{state['order_total'][o]},'{when[i - lo].replace('T', ' ')}')")
        yield chunk


def _newsletter(rng, pools, n, state) -> Iterator[list[str]]:
    total, ncust = n["newsletter_subscribers"], n["customers"]
    known = int(total * 0.7)
    cust = rng.choice(ncust, size=known, replace=False)
    sources = ("checkout", "footer", "popup", "import")
    src = rng.integers(0, len(sources), size=total).tolist()
    for lo, hi in _chunks(total):
        when = _dates(rng, hi - lo)
        chunk = []
        for i in range(lo, hi):
            if i < known:
                email = state["emails"][cust[i]]
            else:
                email = f"news{i + 1}.{state['emails'][i % ncust].split('@')[0].split('.')[0]}@{MAIL_DOMAINS[i % len(MAIL_DOMAINS)]}"
            chunk.append(f"({i + 1},'{email}','{when[i - lo].replace('T', ' ')}','{sources[src[i]]}')")
        yield chunk


_BODIES = (
    "Hello, this is {name}. My order {order} has not arrived yet. Please reply to {email} or call me on {phone}.",
    "Hi team,\nI was charged twice for order {order}. You can reach me at {phone}.\nThanks, {name} ({email})",
    "Please change the e-mail on my account from {email} to {other}. Phone for questions: {phone}.",
    "Dear support, the parcel for {order} was damaged. Contact: {email}. Regards, {name}",
)


def _tickets(rng, pools, n, state) -> Iterator[list[str]]:
    total, ncust, norders = n["support_tickets"], n["customers"], n["orders"]
    cust = rng.integers(0, ncust, size=total)
    anon = rng.random(total) < 0.1
    tpl = rng.integers(0, len(_BODIES), size=total)
    subj = rng.integers(0, len(TICKET_SUBJECTS), size=total)
    orders = rng.integers(1, norders + 1, size=total)
    for lo, hi in _chunks(total):
        when = _dates(rng, hi - lo)
        chunk = []
        for i in range(lo, hi):
            c = int(cust[i])
            body = _BODIES[tpl[i]].format(name=state["names"][c], order=f"#{orders[i]}", email=state["emails"][c],
                                          phone=state["phones"][c], other=state["emails"][(c + 1) % ncust])
            chunk.append(f"({i + 1},{'NULL' if anon[i] else c + 1},'{sql_escape(TICKET_SUBJECTS[subj[i]])}',"
                         f"'{sql_escape(body)}','{when[i - lo].replace('T', ' ')}')")
        yield chunk


def _logins(rng, pools, n, state) -> Iterator[list[str]]:
    total, ncust = n["login_events"], n["customers"]
    cust = rng.integers(1, ncust + 1, size=total).tolist()
    ua = rng.integers(0, len(USER_AGENTS), size=total).tolist()
    ok = (rng.random(total) < 0.93).astype(int).tolist()
    v6 = rng.random(total) < 0.2
    octets = rng.integers(1, 255, size=(total, 4)).tolist()
    hextets = rng.integers(0, 65535, size=(total, 4)).tolist()
    for lo, hi in _chunks(total):
        when = _dates(rng, hi - lo)
        chunk = []
        for i in range(lo, hi):
            if v6[i]:
                h = hextets[i]
                ip = f"2a02:{h[0]:x}:{h[1]:x}:{h[2]:x}::{h[3]:x}"
            else:
                o = octets[i]
                ip = f"{o[0]}.{o[1]}.{o[2]}.{o[3]}"
            chunk.append(f"({i + 1},{cust[i]},'{ip}','{USER_AGENTS[ua[i]]}',{ok[i]},'{when[i - lo].replace('T', ' ')}')")
        yield chunk


_ROWS = {"customers": _customers, "addresses": _addresses, "products": _products, "orders": _orders,
         "order_items": _order_items, "payments": _payments, "newsletter_subscribers": _newsletter,
         "support_tickets": _tickets, "login_events": _logins}
