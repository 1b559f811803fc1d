"""Rule files: which strategy rewrites which column, validated with precise errors.

    locale: [en_US, de_DE]            # Faker locale(s) for the dictionaries
    key_env: PHOENIX_ANON_KEY         # where the secret key comes from
    email_domain: example.invalid     # domain of fake e-mails
    tables:
      customers:
        columns:
          email: email                               # a strategy by name
          phone: {strategy: phone, where: "phone <> ''"}
          company: "faker:company"                   # any Faker provider
          profile: {json: {"$.secondary_email": email, "$.mobile": phone}}
          locale: keep                               # explicitly not personal data
      regions:
        columns: {name: public}                      # public reference data (see `public` below)
      sessions: {truncate: true}
      audit_log: {delete_where: "created_at < NOW() - INTERVAL 90 DAY"}
      crm.contacts:                                  # `db.table`: a table of another database
        columns: {phone: phone}
    databases:                                       # or a section per database
      billing:
        tables:
          invoices: {columns: {iban: iban}}
    database: shop    # the database unqualified tables are in (default: the dump's only one)

`keep` and `public` both leave a column as it is. `keep` says "checked: not personal";
`public` says "public reference data" (regions, cities of stores, names of public figures):
its values may equal words of personal data, so the gate searches a `public` column only for
identifying originals (e-mails, phones, IBANs, full names, streets), never for single words
such as first names or cities — `keep` columns are also searched for the single words of
their own table (a kept copy of a rewritten column).

Errors name the file, the line, the table and the column, and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from phoenix.errors import RulesError

DICT_STRATEGIES = {"first_name", "last_name", "name", "street", "city", "postcode", "iban"}
STRATEGIES = DICT_STRATEGIES | {
    "email",
    "phone",
    "ip",
    "birth_date",
    "date_shift",
    "hash",
    "fixed",
    "null",
    "empty",
    "keep",
    "public",
    "scrub",
    "json",
}
_TABLE_KEYS = {"columns", "truncate", "delete_where"}
_COLUMN_KEYS = {"strategy", "args", "where", "json"}
_TOP_KEYS = {"locale", "key_env", "email_domain", "tables", "database", "databases"}
_DATABASE_KEYS = {"tables"}


@dataclass
class ColumnRule:
    strategy: str  # one of STRATEGIES, or "faker:<provider>"
    args: dict = field(default_factory=dict)
    where: str | None = None
    paths: dict[str, ColumnRule] = field(default_factory=dict)  # for json
    line: int = 0

    @property
    def changes(self) -> bool:
        return self.strategy not in ("keep", "public")

    @property
    def public(self) -> bool:
        return self.strategy == "public"


@dataclass
class TableRule:
    name: str
    columns: dict[str, ColumnRule] = field(default_factory=dict)
    truncate: bool = False
    delete_where: str | None = None
    line: int = 0

    @property
    def removes_rows(self) -> bool:
        return self.truncate or bool(self.delete_where)


@dataclass
class Rules:
    path: str
    locales: list[str]
    key_env: str
    email_domain: str
    tables: dict[str, TableRule]  # unqualified: the tables of the home database (`database`)
    database: str | None = None  # the top-level `database:` key
    databases: dict[str, dict[str, TableRule]] = field(default_factory=dict)  # `db.table` and `databases:`
    lines: dict[str, int] = field(default_factory=dict)  # database -> line where the rules first name it

    def faker_providers(self) -> set[str]:
        out = set()
        for t in self.tables.values():
            for c in t.columns.values():
                for r in (c, *c.paths.values()):
                    if r.strategy.startswith("faker:"):
                        out.add(r.strategy.split(":", 1)[1])
        return out

    def for_database(self, database: str, home: bool) -> Rules:
        """The rules of one database, as the engine and the gate take them: its qualified
        tables, and the unqualified ones if it is the home database."""
        tables = {**(self.tables if home else {}), **self.databases.get(database, {})}
        return replace(self, tables=tables, database=database, databases={})

    def of(self, database: str) -> Rules:
        """The rules of one database named on its own (`phoenix anonymize --dsn …/db`): its
        qualified tables, and the unqualified ones unless `database:` names another."""
        return self.for_database(database, self.database in (None, database))

    def everything(self) -> Rules:
        """All tables of all databases (keyed `db.table`): what the key pads and
        dictionaries of one restore must cover."""
        tables = {**self.tables, **{f"{d}.{t}": r for d, ts in self.databases.items() for t, r in ts.items()}}
        return replace(self, tables=tables, databases={})

    def split(self, databases: list[str]) -> dict[str, Rules]:
        """The rules of each database a source holds, checked first: a database the rules
        name that is not there, or unqualified tables with no home database, is a
        RulesError (exit 2) naming the line — before anything is anonymized."""
        home = self.database or (databases[0] if len(databases) == 1 else None)
        held = ", ".join(databases) or "none"
        for db in [*([self.database] if self.database else []), *self.databases]:
            if db not in databases:
                raise RulesError(
                    f"{self.path}:{self.lines.get(db, 0)}: database {db!r} is not in the source (it holds: {held}); "
                    "fix the name in the rules or dump that database too"
                )
        if self.tables and home is None:
            first = next(iter(self.tables.values()))
            raise RulesError(
                f"{self.path}:{first.line}: table {first.name!r} names no database and the source holds several "
                f"({held}); write it as `<database>.{first.name}` or set `database:` at the top level"
            )
        for t, rule in self.tables.items():
            if home is not None and t in self.databases.get(home, {}):
                raise RulesError(f"{self.path}:{rule.line}: table {home}.{t} has two rules; keep one")
        return {db: self.for_database(db, db == home) for db in databases}


def _fail(path: Path, node: yaml.Node | None, where: str, what: str) -> RulesError:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return RulesError(f"{path}{line}: {where}: {what}")


def _mapping(path: Path, node: yaml.Node, where: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, where, "expected a mapping")
    return node.value


def _scalar(path: Path, node: yaml.Node, where: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(path, node, where, "expected a single value")
    return str(node.value)


def _strategy(path: Path, node: yaml.Node, where: str, name: str) -> str:
    if name.startswith("faker:"):
        provider = name.split(":", 1)[1]
        from faker import Faker

        if not provider or not hasattr(Faker(), provider):
            raise _fail(path, node, where, f"unknown Faker provider {provider!r}")
        return name
    if name not in STRATEGIES:
        raise _fail(
            path,
            node,
            where,
            f"unknown strategy {name!r}; use one of {', '.join(sorted(STRATEGIES))} or faker:<provider>",
        )
    return name


def _column(path: Path, node: yaml.Node, where: str) -> ColumnRule:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        strategy = _strategy(path, node, where, str(node.value))
        if strategy in ("json", "fixed"):
            raise _fail(path, node, where, f"strategy {strategy!r} needs arguments (a mapping)")
        return ColumnRule(strategy=strategy, line=line)
    rule = ColumnRule(strategy="", line=line)
    for k, v in _mapping(path, node, where):
        key = _scalar(path, k, where)
        if key == "public":
            raise _fail(
                path,
                k,
                where,
                "`public` is a strategy of its own (`column: public`), not a key: a column is either "
                "rewritten by a strategy or public reference data, not both",
            )
        if key not in _COLUMN_KEYS:
            raise _fail(path, k, where, f"unknown key {key!r}; expected {', '.join(sorted(_COLUMN_KEYS))}")
        if key == "strategy":
            rule.strategy = _strategy(path, v, where, _scalar(path, v, where))
        elif key == "where":
            rule.where = _scalar(path, v, where)
        elif key == "args":
            rule.args = yaml.safe_load(yaml.serialize(v)) or {}
        elif key == "json":
            rule.strategy = "json"
            for pk, pv in _mapping(path, v, where):
                p = _scalar(path, pk, where)
                if not p.startswith("$"):
                    raise _fail(path, pk, where, f"JSON path {p!r} must start with '$'")
                sub = _column(path, pv, f"{where} {p}")
                if sub.strategy in ("json", "scrub", "public"):
                    raise _fail(path, pv, where, f"strategy {sub.strategy!r} is not allowed inside json")
                rule.paths[p] = sub
    if not rule.strategy:
        raise _fail(path, node, where, "no strategy given")
    if rule.public and (rule.where or rule.args):
        raise _fail(
            path,
            node,
            where,
            "`public` takes no `where` or `args`: public reference data is public in every row; "
            "give the column another strategy if some rows are personal",
        )
    if rule.strategy == "fixed" and "value" not in rule.args:
        raise _fail(path, node, where, "strategy 'fixed' needs args: {value: ...}")
    return rule


def _refuse_aliases(path: Path, text: str) -> None:
    """Anchors and aliases are refused before any node is built: nested aliases (an
    "alias bomb") expand to gigabytes in `args`, and a rules file has no use for them."""
    for event in yaml.parse(text):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            line = f":{event.start_mark.line + 1}" if event.start_mark else ""
            raise RulesError(
                f"{path}{line}: YAML anchors and aliases (&, *) are not allowed in a rules file; write the value out"
            )


def load_rules(path: str | Path) -> Rules:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file ({exc.strerror}); check the path") from None
    try:
        _refuse_aliases(path, text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise RulesError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if root is None:
        raise RulesError(f"{path}: the rules file is empty")
    top: dict[str, yaml.Node] = {}
    for k, v in _mapping(path, root, "top level"):
        key = _scalar(path, k, "top level")
        if key not in _TOP_KEYS:
            raise _fail(path, k, "top level", f"unknown key {key!r}; expected {', '.join(sorted(_TOP_KEYS))}")
        top[key] = v
    locales_node = top.get("locale")
    locales = (
        ["en_US"]
        if locales_node is None
        else [_scalar(path, n, "locale") for n in locales_node.value]
        if isinstance(locales_node, yaml.SequenceNode)
        else [_scalar(path, locales_node, "locale")]
    )
    from faker.config import AVAILABLE_LOCALES

    for loc in locales:
        if loc not in AVAILABLE_LOCALES:
            raise _fail(path, locales_node, "locale", f"unknown Faker locale {loc!r}")
    tables, databases, lines = _tables(path, top)
    return Rules(
        path=str(path),
        locales=locales,
        key_env=_scalar(path, top["key_env"], "key_env") if "key_env" in top else "PHOENIX_ANON_KEY",
        email_domain=_scalar(path, top["email_domain"], "email_domain") if "email_domain" in top else "example.invalid",
        tables=tables,
        database=_scalar(path, top["database"], "database") if "database" in top else None,
        databases=databases,
        lines=lines,
    )


def _tables(path: Path, top: dict[str, yaml.Node]) -> tuple[dict, dict, dict]:
    """Unqualified tables, tables per database (`db.table` keys, `databases:` sections),
    and the line where each database is first named."""
    if "tables" not in top and "databases" not in top:
        raise RulesError(f"{path}: no 'tables' section; nothing would be anonymized")
    tables: dict[str, TableRule] = {}
    databases: dict[str, dict[str, TableRule]] = {}
    lines: dict[str, int] = {}
    if "database" in top:
        lines[_scalar(path, top["database"], "database")] = top["database"].start_mark.line + 1
    for tk, tv in _mapping(path, top["tables"], "tables") if "tables" in top else []:
        tname = _scalar(path, tk, "tables")
        db, dot, bare = tname.partition(".")
        if dot and db and bare:  # `db.table`
            lines.setdefault(db, tk.start_mark.line + 1)
            _add(path, tk, databases.setdefault(db, {}), _table(path, bare, tk, tv), tname)
        else:
            _add(path, tk, tables, _table(path, tname, tk, tv), tname)
    for dk, dv in _mapping(path, top["databases"], "databases") if "databases" in top else []:
        db = _scalar(path, dk, "databases")
        lines.setdefault(db, dk.start_mark.line + 1)
        for k, v in _mapping(path, dv, f"database {db}"):
            key = _scalar(path, k, f"database {db}")
            if key not in _DATABASE_KEYS:
                raise _fail(
                    path, k, f"database {db}", f"unknown key {key!r}; expected {', '.join(sorted(_DATABASE_KEYS))}"
                )
            for tk, tv in _mapping(path, v, f"database {db}, tables"):
                tname = _scalar(path, tk, f"database {db}, tables")
                _add(path, tk, databases.setdefault(db, {}), _table(path, tname, tk, tv), f"{db}.{tname}")
    return tables, databases, lines


def _add(path: Path, node: yaml.Node, into: dict[str, TableRule], rule: TableRule, shown: str) -> None:
    if rule.name in into:
        raise _fail(path, node, "tables", f"table {shown} has two rules; keep one")
    into[rule.name] = rule


def _table(path: Path, tname: str, tk: yaml.Node, tv: yaml.Node) -> TableRule:
    rule = TableRule(name=tname, line=tk.start_mark.line + 1)
    for k, v in _mapping(path, tv, f"table {tname}"):
        key = _scalar(path, k, f"table {tname}")
        if key not in _TABLE_KEYS:
            raise _fail(path, k, f"table {tname}", f"unknown key {key!r}; expected {', '.join(sorted(_TABLE_KEYS))}")
        if key == "truncate":
            rule.truncate = _scalar(path, v, f"table {tname}").lower() in ("true", "yes", "1")
        elif key == "delete_where":
            rule.delete_where = _scalar(path, v, f"table {tname}")
        else:
            for ck, cv in _mapping(path, v, f"table {tname}"):
                cname = _scalar(path, ck, f"table {tname}")
                rule.columns[cname] = _column(path, cv, f"table {tname}, column {cname}")
    return rule


def check_against_schema(rules: Rules, schema: dict[str, dict[str, tuple[str, int | None]]]) -> None:
    """Unknown table or column → RulesError naming it, before anything is changed.
    `schema`: table → column → (data type, max length)."""
    for tname, trule in rules.tables.items():
        if tname not in schema:
            raise RulesError(f"{rules.path}:{trule.line}: table {tname!r} does not exist in the database")
        for cname, crule in trule.columns.items():
            if cname not in schema[tname]:
                raise RulesError(f"{rules.path}:{crule.line}: table {tname}, column {cname!r} does not exist")
            if crule.strategy == "json" and schema[tname][cname][0] not in ("json", "longtext", "text", "mediumtext"):
                raise RulesError(
                    f"{rules.path}:{crule.line}: table {tname}, column {cname}: 'json' needs a JSON column"
                )
