"""The simulated video API that every test and the demo run against.

Entry point: :class:`batchgen.mock.server.MockConfig` with :func:`running_mock` or
:class:`MockThread`.
"""
