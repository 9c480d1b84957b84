"""The HTTP service: an archive served to remote users, each reading only their projects.

>>> from labledger.server import create_app                           # doctest: +SKIP
>>> app = create_app(ll.open("ishtar"))        # uvicorn.run(app) or `labledger serve`
"""

from labledger.server.app import Limits, create_app
from labledger.server.threaded import serving

__all__ = ["Limits", "create_app", "serving"]
