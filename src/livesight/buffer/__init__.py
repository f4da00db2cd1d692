"""Per-stream frame rings, the stream clock, memory budgets, and the stream registry with leases."""
