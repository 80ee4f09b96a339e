"""`python -m bench`: run the benchmark suite and write docs/BENCHMARKS.md (see bench/suite.py)."""

from bench.suite import main

raise SystemExit(main())
