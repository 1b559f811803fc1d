"""Anonymization: rule files, strategies, the in-database engine and the GDPR gate.

rules = load_rules(path)
baseline = take_baseline(admin, database, rules, key)   # before: counts, FKs, hashed sample
report = anonymize(admin, database, rules, key)         # set-based, inside the database
run_gate(admin, database, rules, key, baseline).raise_if_failed()
"""

from anonymization.engine import AnonymizeReport, anonymize
from anonymization.gate import Baseline, GateFailed, GateResult, run_gate, table_checksums, take_baseline
from anonymization.rules import Rules, RulesError, load_rules

__all__ = [
    "AnonymizeReport",
    "Baseline",
    "GateFailed",
    "GateResult",
    "Rules",
    "RulesError",
    "anonymize",
    "load_rules",
    "run_gate",
    "table_checksums",
    "take_baseline",
]
