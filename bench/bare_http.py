"""The ceiling of one Python HTTP process here: a bare aiohttp route under run 0's load.

`python -m bench.bare_http` serves `POST /jobs/admin/launch` from a bare aiohttp app on uvloop
(read the body, answer a fixed JSON the size of a launch's answer; no job, no database), drives
it with the benchmark's own load generator (64 keep-alive clients, 20,000 requests, twice) and
prints the request rate. jobd over HTTP cannot answer faster than this on the same machine.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.queues

from bench.loadgen import run_loaders

ANSWER = json.dumps({"status": {"success": True, "details": "ok"}, "session_id": "x" * 36})


def serve(ports: multiprocessing.queues.Queue[int]) -> None:
    """In the child: serve the bare route on an OS-chosen port, and say which."""
    import uvloop
    from aiohttp import web

    async def launch(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=ANSWER, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/jobs/admin/launch", launch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    uvloop.run(main())


def main() -> None:
    """Print the bare route's request rate, twice."""
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.queues.Queue[int] = context.Queue()
    child = context.Process(target=serve, args=(ports,), daemon=True)
    child.start()
    try:
        port = ports.get(timeout=30)
        for _ in range(2):
            load = run_loaders("127.0.0.1", port, 20_000, 64, 1, 120)
            rate = load["ok"] / (load["last"] - load["first"])
            print(f"bare aiohttp route, 64 clients: {rate:,.0f} req/s")
    finally:
        child.kill()


if __name__ == "__main__":
    main()
