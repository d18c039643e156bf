"""The dispatch clock: deadlines, risk, penalties, tracking checks (DOMAIN.md §1–§2)."""
