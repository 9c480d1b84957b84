"""The remote archive: a labledger server's catalog and store, behind the local interface.

>>> la = labledger.connect("http://127.0.0.1:8000", api_key="ll_...")   # doctest: +SKIP
>>> la.runs[-1].signal("Langmuir_I", points=2000)                     # doctest: +SKIP
"""

from labledger.client.remote import RemoteArchive, RemoteCatalog, connect

__all__ = ["RemoteArchive", "RemoteCatalog", "connect"]
