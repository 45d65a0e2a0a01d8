"""The run report: ``collect`` gathers the figures (report.json), ``html`` renders them (report.html)."""
