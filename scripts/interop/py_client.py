"""Drives the bridge over stdio with the real Python SDK (mcp 2.3.0) client, as an agent would.

Usage: py_client.py --mode legacy|auto|2026-07-28 --profile python|everything|reject [--reconnect] [--cancel]
                    [--no-progress] -- BRIDGE [BRIDGE ARGS...]
--no-progress: the server cannot send progress (JSON-response mode drops it): only the result is
checked. --profile reject: connecting must fail with an error that names the client certificate.
Prints one line: `PASS <summary>` or `FAIL <reason>`; exits 0 on PASS.
Every check asserts a real result (echo text, tool names, progress before the result).
"""

import argparse
import sys
import time

import anyio
from mcp import Client, StdioServerParameters

CALL_TIMEOUT = 20.0


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in result.content)


async def call_with_progress(client, tool, arguments, steps):
    """Calls a tool with a progress callback; checks every step's progress arrived before the result
    (when `steps` > 0)."""
    seen = []

    async def on_progress(progress, total, message):
        seen.append(progress)

    result = await client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT, progress_callback=on_progress)
    check(not result.is_error, f"{tool} returned a tool error: {text_of(result)!r}")
    check(len(seen) >= steps, f"{tool}: {len(seen)} of {steps} progress notifications before the result ({seen})")
    return result


async def cancel_slow(client, tool, arguments):
    """Abandons a long call (the client sends notifications/cancelled), then checks the bridge still works."""
    started = time.monotonic()
    with anyio.move_on_after(1.0):
        await client.call_tool(tool, arguments, read_timeout_seconds=CALL_TIMEOUT)
        raise Failed(f"{tool} finished before it could be cancelled")
    check(time.monotonic() - started < 3, "cancelling the call took too long")


async def cancelled_count(client):
    text = text_of(await client.call_tool("cancelled", {}, read_timeout_seconds=CALL_TIMEOUT))
    check(text.startswith("cancelled="), f"cancelled returned {text!r}")
    return int(text.split("=", 1)[1])


async def run_python(client, args, notes):
    names = {t.name for t in (await client.list_tools()).tools}
    check({"echo", "add", "slow"} <= names, f"tools/list lacks echo/add/slow: {sorted(names)}")
    text = text_of(await client.call_tool("echo", {"message": "hi"}, read_timeout_seconds=CALL_TIMEOUT))
    check(text == "Echo: hi", f"echo returned {text!r}")
    text = text_of(await client.call_tool("add", {"a": 2, "b": 3}, read_timeout_seconds=CALL_TIMEOUT))
    check("5" in text, f"add returned {text!r}")
    contents = (await client.read_resource("test://hello")).contents
    check(contents and getattr(contents[0], "text", "") == "Hello, world!", f"resource read gave {contents!r}")
    prompt = await client.get_prompt("greet", {"name": "Ann"})
    prompt_text = " ".join(getattr(m.content, "text", "") for m in prompt.messages)
    check("Please greet Ann." in prompt_text, f"prompt gave {prompt_text!r}")
    await call_with_progress(client, "slow", {"steps": 3, "delay": 0.2}, 0 if args.no_progress else 3)
    notes.append("echo,add,resource,prompt" + ("" if args.no_progress else ",progress"))
    if args.reconnect:
        result = await call_with_progress(client, "reconnect", {}, 2)
        check(text_of(result) == "answered after reconnect", f"reconnect returned {text_of(result)!r}")
        notes.append("resumed")
    if args.cancel:
        # The server counts the slow calls it saw cancelled (over its whole life, so other cells'
        # calls count too): the cancel must raise that count by one, promptly.
        before = await cancelled_count(client)
        await cancel_slow(client, "slow", {"steps": 50, "delay": 0.2})
        text = text_of(await client.call_tool("echo", {"message": "after"}, read_timeout_seconds=CALL_TIMEOUT))
        check(text == "Echo: after", f"echo after cancel returned {text!r}")
        deadline = time.monotonic() + 3
        while (after := await cancelled_count(client)) == before and time.monotonic() < deadline:
            await anyio.sleep(0.2)
        check(after == before + 1, f"the server did not see the cancellation (cancelled {before} -> {after})")
        notes.append("cancel")


async def run_everything(client, args, notes):
    names = {t.name for t in (await client.list_tools()).tools}
    wanted = {"echo", "get-sum", "trigger-long-running-operation"}
    check(wanted <= names, f"tools/list lacks {sorted(wanted - names)}: {sorted(names)}")
    text = text_of(await client.call_tool("echo", {"message": "hi"}, read_timeout_seconds=CALL_TIMEOUT))
    check(text == "Echo: hi", f"echo returned {text!r}")
    text = text_of(await client.call_tool("get-sum", {"a": 1, "b": 2}, read_timeout_seconds=CALL_TIMEOUT))
    check("3" in text, f"get-sum returned {text!r}")
    resources = (await client.list_resources()).resources
    check(resources, "resources/list is empty")
    contents = (await client.read_resource(str(resources[0].uri))).contents
    check(contents, f"reading {resources[0].uri} gave nothing")
    prompts = {p.name for p in (await client.list_prompts()).prompts}
    check("simple-prompt" in prompts, f"prompts/list lacks simple-prompt: {sorted(prompts)}")
    prompt = await client.get_prompt("simple-prompt", {})
    check(prompt.messages, "simple-prompt has no messages")
    await call_with_progress(client, "trigger-long-running-operation", {"duration": 1, "steps": 3}, 3)
    notes.append("echo,sum,resource,prompt,progress")
    if args.cancel:
        await cancel_slow(client, "trigger-long-running-operation", {"duration": 10, "steps": 5})
        text = text_of(await client.call_tool("echo", {"message": "after"}, read_timeout_seconds=CALL_TIMEOUT))
        check(text == "Echo: after", f"echo after cancel returned {text!r}")
        notes.append("cancel")


async def expect_rejection(params, mode):
    """Connecting without a client certificate must fail, and the bridge must say why."""
    try:
        with anyio.fail_after(30):
            async with Client(params, mode=mode, read_timeout_seconds=CALL_TIMEOUT) as client:
                await client.list_tools()
    except Failed:
        raise
    except BaseException as e:  # noqa: BLE001 - the failure is what this profile expects
        reason = e
        while isinstance(reason, BaseExceptionGroup) and reason.exceptions:
            reason = reason.exceptions[0]
        text = f"{type(reason).__name__}: {reason}".replace("\n", " ")
        check("certificate" in text.lower(), f"rejected, but the error does not mention the certificate: {text[:200]}")
        return f"rejected: {text[:100]}"
    raise Failed("connected and listed tools without a client certificate")


async def main_async(args, bridge):
    notes = []
    params = StdioServerParameters(command=bridge[0], args=bridge[1:])
    if args.profile == "reject":
        return await expect_rejection(params, args.mode)
    with anyio.fail_after(90):
        async with Client(params, mode=args.mode, read_timeout_seconds=CALL_TIMEOUT) as client:
            notes.append(f"v{client.protocol_version}")
            if args.profile == "python":
                await run_python(client, args, notes)
            else:
                await run_everything(client, args, notes)
    return " ".join(notes)


def main():
    argv = sys.argv[1:]
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["legacy", "auto", "2026-07-28"], required=True)
    parser.add_argument("--profile", choices=["python", "everything", "reject"], required=True)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--reconnect", action="store_true")
    parser.add_argument("--cancel", action="store_true")
    args = parser.parse_args(argv[:split])
    try:
        summary = anyio.run(main_async, args, argv[split + 1 :])
    except Failed as e:
        print(f"FAIL {e}")
        sys.exit(1)
    except BaseException as e:  # noqa: BLE001 - any crash is a failed cell, with its reason
        reason = e
        while isinstance(reason, BaseExceptionGroup) and reason.exceptions:
            reason = reason.exceptions[0]
        print(f"FAIL {type(reason).__name__}: {reason}".replace("\n", " ")[:300])
        sys.exit(1)
    print(f"PASS {summary}")


if __name__ == "__main__":
    main()
