"""Reporting: the paper's published Tables 1–5, measured run folders, the tables built from
both, and the plots. `stages/report.py` and `stages/ablate.py` drive these modules."""
