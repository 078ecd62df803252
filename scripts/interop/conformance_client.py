"""A stdio MCP client (Python SDK 2.3.0) for the official conformance suite's client scenarios.

The runner calls: conformance_client.py BRIDGE [BRIDGE ARGS...] URL
(it appends the URL of its plain-HTTP scenario server). This script spawns
`BRIDGE [BRIDGE ARGS...] --allow-http URL` and drives it over stdio; only the bridge speaks
HTTP, so the runner's checks grade the bridge. The scenario comes from MCP_CONFORMANCE_SCENARIO,
its data from MCP_CONFORMANCE_CONTEXT, and the era from MCP_CONFORMANCE_PROTOCOL_VERSION:
2026-07-28 scenarios use the SDK's default mode="auto" (discover probe), older ones mode="legacy"
(a plain initialize, like Claude Desktop and the TypeScript clients).
"""

import json
import os
import sys

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters

TIMEOUT = 20.0


def defaults_of(schema):
    """The `default` of every property of an elicitation's requestedSchema (SEP-1034)."""
    return {k: v["default"] for k, v in (schema or {}).get("properties", {}).items() if "default" in v}


async def on_elicit(context, params):
    schema = getattr(params, "requested_schema", None)
    if hasattr(schema, "model_dump"):
        schema = schema.model_dump(by_alias=True, exclude_none=True)
    return types.ElicitResult(action="accept", content=defaults_of(schema))


def dummy_arguments(tool):
    """Arguments that satisfy a tool's inputSchema well enough to call it."""
    samples = {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "object": {}, "array": [], "null": None}
    properties = (tool.input_schema or {}).get("properties", {})
    return {name: samples.get(schema.get("type"), "x") for name, schema in properties.items()}


async def raw_tools(client):
    """tools/list as the bridge relayed it: `Client.list_tools` would filter invalid x-mcp-header
    tools itself on a modern connection, which would hide whether the bridge did."""
    return (await client.session.send_request(types.ListToolsRequest(), types.ListToolsResult)).tools


async def call(client, name, arguments):
    return await client.call_tool(name, arguments, read_timeout_seconds=TIMEOUT)


async def run(scenario, context, client):
    if scenario == "initialize":
        await client.list_tools()
    elif scenario == "tools_call":
        names = [t.name for t in (await client.list_tools()).tools]
        if "add_numbers" in names:
            await call(client, "add_numbers", {"a": 5, "b": 3})
    elif scenario == "elicitation-sep1034-client-defaults":
        await client.list_tools()
        await call(client, "test_client_elicitation_defaults", {})
    elif scenario == "sse-retry":
        await client.list_tools()
        result = await call(client, "test_reconnection", {})
        print(f"sse-retry result: {result.content}", file=sys.stderr)
    elif scenario == "request-metadata":
        await client.list_tools()
        await call(client, "anything", {})
    elif scenario == "http-standard-headers":
        for tool in (await client.list_tools()).tools:
            await call(client, tool.name, {})
        for resource in (await client.list_resources()).resources:
            await client.read_resource(str(resource.uri))
        for prompt in (await client.list_prompts()).prompts:
            await client.get_prompt(prompt.name, {})
    elif scenario == "http-custom-headers":
        await client.list_tools()  # the bridge learns the x-mcp-header annotations here
        for tool_call in context.get("toolCalls", []):
            await call(client, tool_call["name"], tool_call.get("arguments", {}))
    elif scenario == "http-invalid-tool-headers":
        # Call whatever the bridge let through: it must have dropped the invalid tools.
        for tool in await raw_tools(client):
            await call(client, tool.name, dummy_arguments(tool))
    else:
        await client.list_tools()


async def main_async():
    *bridge, url = sys.argv[1:]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    modern = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "") >= "2026-07-28"
    params = StdioServerParameters(command=bridge[0], args=[*bridge[1:], "--allow-http", url])
    with anyio.fail_after(60):
        async with Client(
            params,
            mode="auto" if modern else "legacy",
            read_timeout_seconds=TIMEOUT,
            elicitation_callback=on_elicit,
        ) as client:
            print(f"connected: protocol {client.protocol_version}", file=sys.stderr)
            await run(scenario, context, client)


if __name__ == "__main__":
    anyio.run(main_async)
