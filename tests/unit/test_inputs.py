"""What a user types, checked before anything runs: names, TTLs, settings, rules files."""

from __future__ import annotations

from datetime import timedelta

import pytest

from anonymization.rules import load_rules
from phoenix.config import load_settings, parse_size
from phoenix.errors import ConfigError, InvalidEnvName, InvalidTTL, RulesError
from phoenix.names import env_id, image_name, parse_ttl


def test_env_ids_are_stable_safe_and_distinct_for_names_that_differ():
    assert env_id("feature/ABC-1") == env_id("feature/ABC-1")
    assert env_id("feature/ABC-1") != env_id("feature-abc-1")
    for name in ("feature/ABC-1", "$(touch x)", "a[/]b", "x" * 200):
        eid = env_id(name)
        assert len(eid) <= 40 and set(eid) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        assert image_name(eid).startswith("env-")
    with pytest.raises(InvalidEnvName):
        env_id("")


@pytest.mark.parametrize("ttl, expected", [("30m", timedelta(minutes=30)), ("8h", timedelta(hours=8)),
                                           ("2d", timedelta(days=2))])
def test_ttls_in_the_documented_forms(ttl, expected):
    assert parse_ttl(ttl) == expected


def test_a_bad_ttl_is_one_line_exit_2():
    with pytest.raises(InvalidTTL) as err:
        parse_ttl("3 parsecs")
    assert err.value.exit_code == 2 and "30m" in str(err.value)


@pytest.mark.parametrize("ttl", ["99999999d", "999999d", "91d", "13w", "99999999999999999999s"])
def test_a_ttl_beyond_90_days_is_refused_not_an_overflow(ttl):
    with pytest.raises(InvalidTTL) as err:  # 99999999d raised OverflowError; 999999d meant year 4764
        parse_ttl(ttl)
    assert err.value.exit_code == 2 and "90d" in str(err.value)
    assert parse_ttl("90d") == timedelta(days=90)


def test_settings_name_the_bad_key_and_sizes_parse():
    with pytest.raises(ConfigError) as err:
        load_settings(storage="floppy")
    assert "storage" in str(err.value) and "\n" not in str(err.value)
    assert parse_size("20G") == 20 << 30
    with pytest.raises(ConfigError):
        parse_size("lots")


def test_the_shipped_rules_load_and_a_broken_file_names_its_line(tmp_path):
    rules = load_rules("anonymization/rules/shop.yaml")
    assert rules.tables["customers"].columns["email"].strategy == "email"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  t:\n    columns:\n      c: [unclosed\n")
    with pytest.raises(RulesError) as err:
        load_rules(bad)
    assert str(bad) in str(err.value) and err.value.exit_code == 2
