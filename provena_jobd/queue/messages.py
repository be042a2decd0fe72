"""What a job's `info` says when the queue itself (not its handler) moved it."""

from __future__ import annotations

LOST = "Requeued: its worker was lost (lease expired or jobd restarted) on attempt {attempt}."
GAVE_UP = (
    "Job failed: its worker was lost (lease expired or jobd restarted) on each of "
    "{attempt} attempts; giving up."
)
SUSPECT = (
    "Requeued: jobd stopped unexpectedly while this job ran beside others (attempt "
    "{attempt}, not counted). It runs again alone first, to see whether it was the cause."
)
RAN_ALONE = (
    "Requeued: jobd stopped unexpectedly while this job ran alone (attempt {attempt} "
    "counted). It runs alone again."
)
CULPRIT = (
    "Job failed: jobd stopped unexpectedly each time it ran this job alone "
    "({attempt} attempts), so the job is taken to be the cause."
)
# A running job cancelled (`{info}` is the cancel's own words, `Cancelled by <user>.`): what
# the runner ends it with, and what a requeue, rescue or recovery ends it with instead of
# putting it back in the queue (its handler was stopped or its worker lost, either way).
CANCELLED_RUNNING = "{info} It was running; anything it had launched was discarded."
