"""In-process micro-benchmarks of the server's hot paths (µs per operation)."""
