"""Side-by-side benchmarks of this server against its peers; run ``python -m benchmarks run``."""
