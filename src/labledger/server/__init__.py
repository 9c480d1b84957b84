"""The HTTP service: an archive served to remote users, each reading only their projects.

>>> from labledger.server import create_app
>>> app = create_app(la)                      # uvicorn.run(app) or `labledger serve`
>>> app.title
'labledger'
"""

from labledger.server.app import Limits, create_app
from labledger.server.threaded import serving

__all__ = ["Limits", "create_app", "serving"]
