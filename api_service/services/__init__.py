"""The rules: status transitions, scheduling, and the change record behind every 202."""
