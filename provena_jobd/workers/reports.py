"""GENERATE_REPORT: an HTML report of an item, downloadable from jobd for a limited time."""

from __future__ import annotations

import hashlib
import hmac
import html
import uuid
from typing import TYPE_CHECKING

import anyio

from ..config import ReportSettings
from .handlers import Handler, JobContext, Payload, Result

if TYPE_CHECKING:
    from ..queue.store import JobStore

SIGNING_SECRET = "report-links"
RECORDS_PER_LEVEL = 50


def sign(key: str, name: str, expires: int) -> str:
    """The signature that makes a report link valid until `expires`."""
    return hmac.new(key.encode(), f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


def link_is_valid(key: str, name: str, expires: int, signature: str, now: float) -> bool:
    """True for an unexpired link that jobd signed."""
    return now < expires and hmac.compare_digest(sign(key, name, expires), signature)


def report_handler(settings: ReportSettings, store: JobStore) -> Handler:
    """A handler that writes reports to `settings.folder`."""

    async def generate_report(context: JobContext, payload: Payload) -> Result:
        """Write the report and return a signed, expiring link to it."""
        item_id = payload["id"]
        sections = []
        frontier, seen = [item_id], {item_id}
        for level in range(1, payload["depth"] + 1):
            found = []
            for text in frontier:
                for record in await store.records_mentioning(text, RECORDS_PER_LEVEL):
                    if record.record_id not in seen:
                        seen.add(record.record_id)
                        found.append(record)
            rows = "".join(
                f"<tr><td>{html.escape(r.record_id)}</td><td>{html.escape(r.kind)}</td>"
                f"<td>{html.escape(r.username)}</td><td><code>{html.escape(str(r.data))}</code>"
                "</td></tr>"
                for r in found
            )
            sections.append(
                f"<h2>Level {level}: {len(found)} related records</h2>"
                f"<table><tr><th>id</th><th>kind</th><th>user</th><th>data</th></tr>{rows}</table>"
            )
            frontier = [r.record_id for r in found]
        document = (
            "<!doctype html><meta charset=utf-8>"
            f"<title>Report for {html.escape(item_id)}</title>"
            f"<h1>Report for {html.escape(item_id)} ({html.escape(payload['item_subtype'])})</h1>"
            f"<p>Requested by {html.escape(context.username)}; depth {payload['depth']}.</p>"
            + "".join(sections)
        )
        folder = anyio.Path(settings.folder)
        await folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.html"
        await (folder / name).write_text(document, "utf-8")
        expires = int(context.clock.now() + settings.url_ttl_s)
        key = await store.secret(SIGNING_SECRET)
        query = f"expires={expires}&signature={sign(key, name, expires)}"
        return {"report_url": f"{context.public_url}/reports/{name}?{query}"}

    return generate_report
