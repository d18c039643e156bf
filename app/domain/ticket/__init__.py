"""After-sales tickets (DOMAIN.md §4): SLA rules, intake, thread, resolution, refunds."""
