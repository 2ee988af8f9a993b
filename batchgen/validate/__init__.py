"""Validating every manifest row against a provider profile before anything is sent.

Entry point: :func:`batchgen.validate.rows.validate_manifest`.
"""
