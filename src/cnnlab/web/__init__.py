"""The local web page and HTTP API over trained runs (``cnnlab serve``). No logic of its own lives here."""

from cnnlab.web.app import create_app

__all__ = ["create_app"]
