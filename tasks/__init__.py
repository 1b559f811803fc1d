"""The steps of Phoenix, grouped by what they touch: storage, runtime (database servers), sources."""
