"""jobd's benchmark (`make bench` runs `bench/run.py`)."""
