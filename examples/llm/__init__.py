"""Reusable parts of the LLM examples: an OpenAI-compatible chat client operator (``ChatModel``), its
errors, and an embedded OpenAI-compatible server that the examples use when ``OPENAI_BASE_URL`` is unset.

Kept out of ``xcs`` on purpose: the library stays dependency-light; these need ``httpx`` (the
``examples`` extra: ``pip install -e '.[examples]'``).
"""

from examples.llm.client import (
    AuthenticationError,
    ChatClient,
    ChatModel,
    EndpointTimeoutError,
    EndpointUnreachableError,
    LLMError,
    MalformedResponseError,
    MissingAPIKeyError,
    RateLimitError,
    RequestError,
    ServerError,
    close_http_client,
    default_client,
    default_model,
    default_models,
)
from examples.llm.server import EmbeddedServer, default_server, stop_default_server

__all__ = [
    "AuthenticationError",
    "ChatClient",
    "ChatModel",
    "EmbeddedServer",
    "EndpointTimeoutError",
    "EndpointUnreachableError",
    "LLMError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "RateLimitError",
    "RequestError",
    "ServerError",
    "close_http_client",
    "default_client",
    "default_model",
    "default_models",
    "default_server",
    "stop_default_server",
]
