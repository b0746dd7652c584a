"""``matrix-align serve``: an OpenAI-compatible server that answers every request through
MATRIX in front of a model backend.

The modules here import only the standard library and the package's lower layers, except
``app.py`` and ``server.py``, which import starlette and uvicorn (the ``serve`` extra); the
command checks for them first (``extras.require_modules``) so a missing one is one clear
error naming the extra, never an ImportError.
"""
