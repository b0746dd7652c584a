"""Model backends behind one protocol (base.ChatModel), plus wrappers that add behaviour."""

from matrix_align.llm.base import ChatModel, Completion, Message
from matrix_align.llm.registry import BACKENDS, make_model

__all__ = ["BACKENDS", "ChatModel", "Completion", "Message", "make_model"]
