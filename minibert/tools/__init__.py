"""Developer tools behind the CLI: benchmarks, the per-layer trace, the frozen reference files."""
