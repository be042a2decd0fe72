"""jobd's benchmark (`make bench` runs `python -m bench.run`); see docs/benchmarks.md."""
