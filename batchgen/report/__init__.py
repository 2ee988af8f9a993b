"""The results report: the text summary, CSV/xlsx exports and the HTML contact sheet.

Entry point: :func:`batchgen.report.summary.load_report`.
"""
