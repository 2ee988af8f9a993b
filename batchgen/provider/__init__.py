"""Talking to a provider: the HTTP client, pacing, retries, and where settings come from.

Entry point: :class:`batchgen.provider.client.VideoClient`.
"""
