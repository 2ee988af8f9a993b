"""Following jobs to the end: polling, downloading, safe file names, and the follower
that runs them together.

Entry point: :func:`batchgen.follow.follower.follow_jobs`.
"""
