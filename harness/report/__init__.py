"""Reports: console summary, JUnit XML and the self-contained HTML report, rendered from the run
journal (harness/journal.py)."""
