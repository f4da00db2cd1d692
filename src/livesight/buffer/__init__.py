"""Frames only: per-stream frame rings, the stream clock and memory budgets. Knows no owner or lease."""
