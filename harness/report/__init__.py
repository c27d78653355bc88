"""Reports: the run journal, console summary, JUnit XML and the self-contained HTML report."""
