"""Load and scale benchmarks, each printing ratios against a raw-asyncpg baseline."""
