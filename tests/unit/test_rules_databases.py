"""Rules that address the databases a dump names: `db.table`, a `databases:` section,
`database:` for the unqualified tables — and the one-line errors when they do not fit."""

from __future__ import annotations

import pytest

from anonymization.rules import load_rules
from phoenix.errors import RulesError

RULES = """\
database: shop
tables:
  customers:
    columns: {email: email}
  crm.contacts:
    columns: {phone: phone}
databases:
  billing:
    tables:
      invoices: {columns: {iban: iban}}
"""


def _rules(tmp_path, text=RULES):
    p = tmp_path / "rules.yaml"
    p.write_text(text)
    return load_rules(p)


def test_qualified_tables_and_sections_go_to_their_database(tmp_path):
    split = _rules(tmp_path).split(["shop", "crm", "billing"])
    assert {db: sorted(r.tables) for db, r in split.items()} == {
        "shop": ["customers"], "crm": ["contacts"], "billing": ["invoices"]}
    assert split["crm"].tables["contacts"].columns["phone"].strategy == "phone"
    assert split["billing"].tables["invoices"].name == "invoices"  # the engine's table name is bare


def test_a_database_the_source_does_not_hold_is_a_one_line_error_naming_its_line(tmp_path):
    with pytest.raises(RulesError) as exc:
        _rules(tmp_path).split(["shop", "billing"])
    msg = str(exc.value)
    assert "rules.yaml:5:" in msg and "'crm'" in msg and "shop, billing" in msg and "\n" not in msg


def test_the_database_key_must_be_in_the_source_too(tmp_path):
    with pytest.raises(RulesError, match=r"rules.yaml:1: database 'shop' is not in the source"):
        _rules(tmp_path).split(["crm", "billing"])


def test_unqualified_tables_belong_to_the_only_database_without_a_database_key(tmp_path):
    r = _rules(tmp_path, "tables:\n  customers: {columns: {email: email}}\n")
    assert list(r.split(["X"])["X"].tables) == ["customers"]


def test_unqualified_tables_with_several_databases_and_no_home_are_refused(tmp_path):
    r = _rules(tmp_path, "tables:\n  customers: {columns: {email: email}}\n")
    with pytest.raises(RulesError, match=r"rules.yaml:2: table 'customers' names no database .*\(a, b\)"):
        r.split(["a", "b"])


def test_a_table_given_twice_is_refused(tmp_path):
    with pytest.raises(RulesError, match="two rules"):
        _rules(tmp_path, "tables:\n  a.t: {truncate: true}\ndatabases:\n  a:\n    tables:\n      t: {truncate: true}\n")
    r = _rules(tmp_path, "database: a\ntables:\n  t: {truncate: true}\n  a.t: {truncate: true}\n")
    with pytest.raises(RulesError, match="a.t has two rules"):
        r.split(["a"])


def test_rules_without_databases_keep_todays_shape(tmp_path):
    r = _rules(tmp_path, "tables:\n  customers: {columns: {email: email}}\n")
    assert list(r.tables) == ["customers"] and r.databases == {} and r.database is None


def test_an_unknown_key_in_a_database_section_is_refused(tmp_path):
    with pytest.raises(RulesError, match=r"rules.yaml:3: database a: unknown key 'colums'"):
        _rules(tmp_path, "databases:\n  a:\n    colums: {}\n")


def test_one_database_named_on_its_own_gets_its_qualified_and_the_unqualified_rules(tmp_path):
    r = _rules(tmp_path)
    assert sorted(r.of("shop").tables) == ["customers"] and sorted(r.of("crm").tables) == ["contacts"]
    plain = _rules(tmp_path, "tables:\n  customers: {columns: {email: email}}\n  crm.contacts: {truncate: true}\n")
    assert sorted(plain.of("anything").tables) == ["customers"] and sorted(plain.of("crm").tables) == [
        "contacts", "customers"]


def test_public_is_a_strategy_that_takes_no_where_and_no_key(tmp_path):
    """`public` (public reference data) is a strategy of its own; a rule that also rewrites the
    column, or limits it to some rows, is refused with a one-line error naming the line."""
    ok = tmp_path / "ok.yaml"
    ok.write_text("tables:\n  regions:\n    columns: {name: public, code: keep}\n")
    rule = load_rules(ok).tables["regions"].columns["name"]
    assert rule.public and not rule.changes
    for body, message in (
        ("{strategy: public, where: \"id > 1\"}", "`public` takes no `where`"),
        ("{strategy: email, public: true}", "`public` is a strategy of its own"),
        ("{json: {\"$.a\": public}}", "'public' is not allowed inside json"),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"tables:\n  regions:\n    columns:\n      name: {body}\n")
        with pytest.raises(RulesError, match=message) as err:
            load_rules(bad)
        assert f"{bad}:4:" in str(err.value) and "\n" not in str(err.value)
