"""What a cycle reports (the run's artifact), built by the flow from what the steps returned.
Never holds a secret or an original value: sizes, counts, timings, markdown of the gates."""

from __future__ import annotations

from dataclasses import dataclass, field


def _mb(n: int) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


@dataclass
class CycleReport:
    stamp: str
    breeder: str
    golden: str
    source: str
    steps: dict[str, float] = field(default_factory=dict)
    source_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    rules: str = ""
    anonymize_md: str = ""
    gate_md: str = ""
    forensic_md: str = ""
    forensic: dict = field(default_factory=dict)
    checksums: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)  # what the restore filled
    skipped: list[str] = field(default_factory=list)  # system schemas in the dump, not restored
    notes: list[str] = field(default_factory=list)  # what the restore's translation changed
    mode: str = "full"  # or "incremental"
    reason: str = ""  # why this mode (auto: why not incremental)
    applied: dict[str, dict[str, int]] = field(default_factory=dict)  # incremental: table -> rows per kind
    positions: list[str] = field(default_factory=list)  # incremental: [from, to] in the source's binary log
    lag: float = 0.0  # incremental: seconds between reading the source's position and the report

    def to_markdown(self) -> str:
        lines = [f"# Breed {self.stamp}", "", f"- source: `{self.source}` ({_mb(self.source_bytes)})",
                 f"- golden: `{self.golden}`", f"- rules: `{self.rules}`", f"- mode: {self.mode} ({self.reason})"]
        if self.databases:
            lines.append("- databases: " + ", ".join(f"`{d}`" for d in self.databases))
        if self.positions:
            lines.append(f"- source's binary log applied: `{self.positions[0]}` → `{self.positions[1]}`, the end read "
                         f"{self.lag:,.0f} s before this report (the golden's lag behind the source)")
        if self.skipped:
            lines.append("- system schemas in the dump, not restored: " + ", ".join(f"`{d}`" for d in self.skipped))
        lines += [f"- restore: {n}" for n in self.notes]
        lines += ["", "| step | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in self.steps.items()]
        lines += [f"| **total** | **{sum(self.steps.values()):.2f}** |", "", "## Rows", "", "| table | rows |",
                  "|---|---:|"]
        lines += [f"| {t} | {n:,} |" for t, n in sorted(self.rows.items())]
        lines += ["", "## Image sizes", "", "| image | size |", "|---|---:|"]
        lines += [f"| {k} | {_mb(v)} |" for k, v in self.sizes.items()]
        lines += ["", self.anonymize_md, "", self.gate_md, "", self.forensic_md]
        if self.removed:
            lines += ["", "Removed: " + ", ".join(f"`{r}`" for r in self.removed)]
        return "\n".join(lines)
