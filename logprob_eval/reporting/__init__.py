"""Reporting: what a run leaves behind (pytest-free). Its modules are imported where they
are needed (plotting and pandas are slow to import), so this package re-exports nothing.

* :mod:`.report` and :mod:`.report_html`: a run's folder (tables, plots, ``report.html``);
* :mod:`.compare`: two runs of the same texts compared (paired tests, flipped texts);
* :mod:`.outputs`: output paths checked before a run, and created folders removed after a
  failed one; :mod:`.retention`: how many run folders are kept.
"""
