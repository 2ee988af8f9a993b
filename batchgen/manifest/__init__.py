"""Reading a content team's manifest: CSV/TSV, .xlsx and YAML into rows, with the row
expansions (templates, matrices, takes) and image handling validation relies on.

Entry point: :func:`batchgen.manifest.loader.load_manifest`.
"""
