"""Model backends behind one protocol (base.ChatModel), plus wrappers that add behaviour."""

from matrix_align.llm.base import ChatModel, Completion, Message
from matrix_align.llm.registry import BACKENDS, make_model
from matrix_align.llm.spec import BackendSpec, open_all

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "ChatModel",
    "Completion",
    "Message",
    "make_model",
    "open_all",
]
