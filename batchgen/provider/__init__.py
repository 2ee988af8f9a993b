"""Talking to a provider: the HTTP client, pacing, retries, where settings come from, and
which provider a command talks to (:mod:`batchgen.provider.resolve`).

Entry point: :class:`batchgen.provider.client.VideoClient`.
"""
