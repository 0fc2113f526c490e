"""Downloads: the receiver pulls each accepted file of an offer over a transfer connection.

One `Download` per running download owns all of it: its cancel scope, the event set when
it is over, its progress and its checkpoints.  It dials the sender (redialling with backoff
while the session lasts), pulls every file from the byte it already holds safely, and
checkpoints as it goes, so an interrupted download resumes by itself.  It tells its owner
what happened through the callbacks it is given: it knows nothing of the control plane.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from p2pim.api import PeerRejectedError
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.sessions import Sessions
from p2pim.storage import Database, FileRecord, StorageError, Store, TransferRecord
from p2pim.storage.transfers import Key
from p2pim.transfer import files as fs
from p2pim.transfer.progress import IDLE_TIMEOUT, STOP_TIMEOUT, Meter, Progress
from p2pim.transfer.state import TransferState
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import BYE_BUSY, BYE_DONE, Bye, Chunk, Outcome, Pull, Unavailable

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 8 << 20  # a receiver killed mid-file loses at most this much progress
TRANSFER_RECEIVE_SIZE = 1 << 20
RETRY_BASE, RETRY_MAX = 1.0, 30.0  # a failed transfer connection is redialled with backoff


class OfferGone(Exception):
    """The sender no longer offers what we accepted (it cancelled, or lost its state)."""


@dataclass(frozen=True, slots=True)
class Puller:
    """What every download uses, and how it reports back to its owner."""

    store: Store
    sessions: Sessions
    slots: trio.CapacityLimiter  # downloads running at once
    nursery: trio.Nursery  # checkpoints run here, beside the download
    meter: Meter
    # Every wanted file has an outcome: the owner ends the transfer and tells the sender.
    completed: Callable[[Key], Awaitable[None]]
    # The sender refused the download for good (why): the owner ends the transfer.
    sender_gone: Callable[[TransferRecord, str], Awaitable[None]]


def partial_file(record: TransferRecord, file: FileRecord) -> fs.IncomingFile:
    """Where an incoming file is written until it is whole."""
    assert record.directory is not None
    # The peer chooses offer ids: two peers' partial files must never share a name.
    partial = f".p2pim-{record.peer[:16]}-{record.offer.hex()}-{file.index}.part"
    return fs.IncomingFile(record.directory, file.path, partial, file.size, file.hash)


class Download:
    """One running download of an accepted offer: `stop()` ends it, and it lasts as long as
    the session with the sender (the owner stops it when the session closes)."""

    def __init__(self, record: TransferRecord, puller: Puller) -> None:
        self.key = record.key
        self._record = record
        self._puller = puller
        self._scope = trio.CancelScope()
        self._finished = trio.Event()
        # Counted afresh by each connection: what the last received past its checkpoint
        # is gone.  None while no connection pulls.
        self.progress: Progress | None = None
        self._checkpoint_idle = trio.Event()  # set when no checkpoint of the file runs
        self._checkpoint_idle.set()

    async def stop(self) -> None:
        """Cancel the download and wait until it is over (its files are then closed)."""
        self._scope.cancel()
        await self._finished.wait()

    def cancel(self) -> None:
        """Cancel the download without waiting (its session closed)."""
        self._scope.cancel()

    async def run(self) -> None:
        """Pull the accepted files until done, redialling as needed, for as long as the
        session with the sender lasts."""
        record, puller = self._record, self._puller
        delay, gone = RETRY_BASE, None
        with self._scope:
            try:
                while (link := puller.sessions.links.get(record.peer)) is not None:
                    try:
                        async with puller.slots:
                            await self._pull_all(link.address, link.reach_port)
                        return
                    except OfferGone as exc:
                        if str(exc) != BYE_BUSY:
                            gone = exc
                            break
                    except (LinkClosed, RemoteProtocolError, PeerRejectedError, OSError) as exc:
                        log.info("transfer from %s interrupted: %s", record.peer[:8], exc)
                    except trio.TooSlowError:
                        log.info("transfer connection to %s timed out", record.peer[:8])
                    except Exception:  # e.g. our disk: the node goes on, the next session retries
                        log.exception("transfer from %s stopped", record.peer[:8])
                        return
                    await trio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            finally:
                self._finished.set()
        if gone is not None:  # outside the scope: ending the transfer stops this download
            try:
                current = await puller.store.run(Database.get_transfer, *self.key) or record
                await puller.sender_gone(current, f"the sender no longer offers it ({gone})")
            except StorageError:  # a full disk: it stays accepted, the next session ends it
                log.exception("could not end the transfer from %s", record.peer[:8])

    async def _pull_all(self, host: str, port: int) -> None:
        offer, peer, _ = self.key
        link = await self._puller.sessions.open_transfer(host, port, peer, offer)
        link.receive_size = TRANSFER_RECEIVE_SIZE
        try:
            record = await self._puller.store.run(Database.get_transfer, *self.key)
            if record is None or record.state is not TransferState.ACCEPTED:
                return
            wanted = [f for f in record.files if f.accepted]
            progress = self.progress = Progress(
                sum(f.size if f.outcome else f.done for f in wanted),
                sum(f.size for f in wanted),
                trio.current_time(),
            )
            for file in wanted:
                if file.outcome is not None:
                    continue
                outcome, saved_as = await self._pull_file(link, record, file, progress)
                await self._puller.store.run(
                    Database.finish_file, record.offer, record.peer, file.index, outcome, saved_as
                )
                if outcome in (Outcome.NO_SPACE, Outcome.WRITE_ERROR):
                    break  # the disk is the problem: the other files would fail too
            self.progress = None
            await self._puller.completed(self.key)
            await link.say_goodbye(BYE_DONE)
        finally:
            await link.close()

    async def _pull_file(
        self, link: PeerLink, record: TransferRecord, file: FileRecord, progress: Progress
    ) -> tuple[Outcome, str | None]:
        """Pull one file; returns its outcome and where it was saved."""
        incoming = partial_file(record, file)
        try:
            offset = await trio.to_thread.run_sync(incoming.open, file.done)
        except OSError as exc:
            log.warning("cannot create %s: %s", file.path, exc)
            return _disk_outcome(exc), None
        progress.add(offset - file.done)
        self._checkpoint_idle = trio.Event()  # this file's: none runs yet
        self._checkpoint_idle.set()
        try:
            failure = None
            if offset < file.size:  # else all is here already: nothing to pull
                await link.send(Pull(file.index, offset))
                failure = await self._receive(link, record, file, incoming, progress)
            await self._checkpoint_idle.wait()
            if failure is None:
                try:
                    saved = await trio.to_thread.run_sync(incoming.finish)
                    await self._puller.meter.report(
                        record, progress, file.index, file.size, file.size, force=True
                    )
                    return Outcome.OK, saved
                except fs.HashMismatch as exc:
                    log.warning("%s", exc)
                    failure = Outcome.HASH_MISMATCH
                except OSError as exc:
                    failure = _disk_outcome(exc)
            await trio.to_thread.run_sync(incoming.discard)
            return failure, None
        finally:
            # Interrupted (a dropped link, a stop): what arrived is sound, so keep it all
            # for the resume, not just what the last checkpoint made durable.
            with trio.move_on_after(STOP_TIMEOUT, shield=True):
                await self._checkpoint_idle.wait()  # a checkpoint may still use the file
                if incoming.is_open and incoming.done > file.done:
                    await self._checkpoint(
                        record, file.index, incoming, incoming.done, trio.Event()
                    )
            incoming.close()  # after an interruption the partial file stays, for resuming

    async def _receive(
        self,
        link: PeerLink,
        record: TransferRecord,
        file: FileRecord,
        incoming: fs.IncomingFile,
        progress: Progress,
    ) -> Outcome | None:
        """Write the file's bytes as they come; an outcome if it cannot be had."""
        synced = incoming.done
        with trio.CancelScope(deadline=trio.current_time() + IDLE_TIMEOUT) as idle:
            while incoming.done < file.size:
                message = await link.receive()
                if isinstance(message, Bye):
                    raise OfferGone(message.reason)
                if isinstance(message, Unavailable) and message.index == file.index:
                    return Outcome.UNAVAILABLE
                if not isinstance(message, Chunk):
                    raise RemoteProtocolError(f"expected file data, got {message.TYPE}")
                if len(message.data) > file.size - incoming.done:
                    raise RemoteProtocolError("more data than the file holds")
                try:
                    incoming.write(message.data)
                except OSError as exc:
                    return _disk_outcome(exc)
                self._puller.meter.received += len(message.data)
                progress.add(len(message.data))
                await self._puller.meter.report(
                    record, progress, file.index, incoming.done, file.size
                )
                now = trio.current_time()
                if now + IDLE_TIMEOUT - idle.deadline > 1:  # moving it per chunk would cost
                    idle.deadline = now + IDLE_TIMEOUT
                if incoming.done - synced >= CHECKPOINT_BYTES:
                    # At most two checkpoints' worth of data is unsynced: the network waits
                    # for the disk, so the page cache never holds a backlog that would stall
                    # every fsync on this disk (the history's included) behind it.
                    await self._checkpoint_idle.wait()
                    synced = incoming.done
                    self._checkpoint_idle = trio.Event()
                    self._puller.nursery.start_soon(
                        self._checkpoint,
                        record,
                        file.index,
                        incoming,
                        synced,
                        self._checkpoint_idle,
                    )
        if idle.cancelled_caught:
            raise trio.TooSlowError
        return None

    async def _checkpoint(
        self,
        record: TransferRecord,
        index: int,
        incoming: fs.IncomingFile,
        done: int,
        finished: trio.Event,
    ) -> None:
        """Make `done` bytes durable, then record that they are (so a resume keeps them).
        Runs beside the download: the disk syncs while the network keeps flowing."""
        try:
            await trio.to_thread.run_sync(incoming.sync)
            await self._puller.store.run(
                Database.save_progress, record.offer, record.peer, index, done
            )
        except Exception:  # progress not recorded: a resume redoes a little more
            log.exception("checkpoint of %s failed", incoming.partial_name)
        finally:
            finished.set()


def _disk_outcome(exc: OSError) -> Outcome:
    return Outcome.NO_SPACE if exc.errno in fs.NO_SPACE else Outcome.WRITE_ERROR
