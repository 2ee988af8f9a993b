"""The simulated video API that every test and the demo run against.

Entry point: :class:`MockConfig` with :func:`running_mock` or :class:`MockThread`.
"""

from batchgen.mock.app import create_app as create_app
from batchgen.mock.config import FAULT_NAMES as FAULT_NAMES
from batchgen.mock.config import Faults as Faults
from batchgen.mock.config import MockConfig as MockConfig
from batchgen.mock.config import common_faults as common_faults
from batchgen.mock.server import MockThread as MockThread
from batchgen.mock.server import RunningMock as RunningMock
from batchgen.mock.server import running_mock as running_mock
from batchgen.mock.server import serve_forever as serve_forever
from batchgen.mock.state import CONFIG_KEY as CONFIG_KEY
from batchgen.mock.state import STATE_KEY as STATE_KEY
from batchgen.mock.state import MockState as MockState
