"""What a job's `info` says when the queue itself (not its handler) moved it."""

from __future__ import annotations

# The attempt-history triggers (migrations 0006 and 0007) tell outcomes apart by these words:
# `lease_lost` by LOST's start; a refunded requeue is `requeued_at_shutdown` with SHUTDOWN's
# and `returned` with any other "Returned to the queue:" info. Keep those beginnings.
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
# Held jobs handed back unstarted, attempt refunded: a shutdown; an outside worker that left
# before its claim was answered; a pool holding more than its reach (workers/shutdown.py).
SHUTDOWN = "Returned to the queue: jobd shut down before the job finished."
WORKER_LEFT = "Returned to the queue: its worker left before it was handed the job."
HANDED_BACK = "Returned to the queue: claimed ahead by a pool busy with longer jobs."
