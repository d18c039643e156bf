"""Stock: ledger, reservations, thresholds, replenishment (DOMAIN.md §3)."""
