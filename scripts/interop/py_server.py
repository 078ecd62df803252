"""A real Python SDK (mcp 2.3.0) MCPServer behind uvicorn with mutual TLS, for `make interop`.

Usage: py_server.py MODE PORT FIXTURES_DIR
MODE: streamable (SSE answers, resumable: event store + retry 500 ms), json (JSON answers),
      stateless (no sessions), sse (legacy HTTP+SSE at /sse).
"""

import asyncio
import ssl
import sys
import uuid

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventMessage, EventStore

mcp = MCPServer("interop-python-server")


@mcp.tool(description="Returns its message")
def echo(message: str) -> str:
    return f"Echo: {message}"


@mcp.tool(description="Adds two integers")
def add(a: int, b: int) -> str:
    return f"The sum of {a} and {b} is {a + b}."


# How many `slow` calls were cancelled by the client (notifications/cancelled, or a closed
# 2026-07-28 response stream): lets the interop client check that a cancel reached the server.
CANCELLED = {"slow": 0}


@mcp.tool(description="Sleeps `steps` x `delay` seconds, reporting progress after each step")
async def slow(ctx: Context, steps: int = 3, delay: float = 0.2) -> str:
    try:
        for step in range(1, steps + 1):
            await asyncio.sleep(delay)
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
    except asyncio.CancelledError:
        CANCELLED["slow"] += 1
        raise
    return f"slow done after {steps} steps"


@mcp.tool(description="How many slow calls were cancelled so far")
def cancelled() -> str:
    return f"cancelled={CANCELLED['slow']}"


@mcp.tool(description="Closes its SSE response stream (SEP-1699), then answers after the client resumes")
async def reconnect(ctx: Context) -> str:
    await ctx.report_progress(1, 2, "before close")
    await ctx.close_sse_stream()
    await asyncio.sleep(0.8)
    await ctx.report_progress(2, 2, "after close")
    return "answered after reconnect"


@mcp.resource("test://hello", description="A greeting", mime_type="text/plain")
def hello() -> str:
    return "Hello, world!"


@mcp.prompt(description="Greets someone")
def greet(name: str) -> str:
    return f"Please greet {name}."


class MemoryEventStore(EventStore):
    """Keeps every event in memory so that a GET with Last-Event-ID can replay its stream."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []  # (event id, stream id, message)

    async def store_event(self, stream_id, message):
        event_id = uuid.uuid4().hex
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):
        index = next((i for i, e in enumerate(self.events) if e[0] == last_event_id), None)
        if index is None:
            return None
        stream_id = self.events[index][1]
        for event_id, sid, message in self.events[index + 1 :]:
            if sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def main() -> None:
    mode, port, fixtures = sys.argv[1], int(sys.argv[2]), sys.argv[3].rstrip("/")
    if mode == "streamable":
        app = mcp.streamable_http_app(host="127.0.0.1", event_store=MemoryEventStore(), retry_interval=500)
    elif mode == "json":
        app = mcp.streamable_http_app(host="127.0.0.1", json_response=True)
    elif mode == "stateless":
        app = mcp.streamable_http_app(host="127.0.0.1", stateless_http=True)
    elif mode == "sse":
        app = mcp.sse_app(host="127.0.0.1")
    else:
        sys.exit(f"unknown mode {mode!r}")
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=f"{fixtures}/server.crt",
        ssl_keyfile=f"{fixtures}/server.key",
        ssl_ca_certs=f"{fixtures}/ca.crt",
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )


if __name__ == "__main__":
    main()
