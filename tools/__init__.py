"""Operator tools: audit, benchmarks, load and fault harnesses. Nothing imports tools."""
