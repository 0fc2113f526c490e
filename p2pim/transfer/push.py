"""Uploads: the sender serves the files of an accepted offer to the receiver's pulls.

The receiver dials a transfer connection and asks for each file from the byte it already
holds (`Pull`); the sender answers with the file's data (`Chunk`s), or `Unavailable` when
the file changed or vanished since it was offered.  What was sent is recorded now and then,
so a restarted node shows how far an upload got.
"""

from __future__ import annotations

import logging

import trio

from p2pim.config import NodeConfig
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.storage import Database, FileRecord, Store, TransferRecord
from p2pim.storage.transfers import Key
from p2pim.transfer import files as fs
from p2pim.transfer.progress import IDLE_TIMEOUT, STOP_TIMEOUT, Meter, Progress
from p2pim.transfer.state import TransferState
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import (
    BYE_BUSY,
    BYE_UNKNOWN_OFFER,
    MAX_CHUNK_BYTES,
    Bye,
    Chunk,
    Pull,
    Unavailable,
)

log = logging.getLogger(__name__)

SEND_BLOCK = 16 * MAX_CHUNK_BYTES  # read from disk and written to the socket at once
SENT_SAVE_INTERVAL = 5.0  # seconds between records of an upload's progress (for restarts)


class Uploads:
    """The uploads being served, at most `config.max_uploads` at once and one per offer
    and peer.  An upload's progress outlives its connection (a reconnecting receiver
    continues it) until `stop` forgets it."""

    def __init__(self, store: Store, config: NodeConfig, meter: Meter) -> None:
        self._store = store
        self._config = config
        self._meter = meter
        self._running: dict[Key, _Upload] = {}
        self._progress: dict[Key, Progress] = {}
        self._serving = 0  # connections being served, stopped ones until they are over
        self._answered: dict[Key, trio.Event] = {}  # transfer connections awaiting the reply

    def progress(self, key: Key) -> Progress | None:
        return self._progress.get(key)

    def cancel(self, peer: str) -> None:
        """Drop every upload to `peer` (its session closed)."""
        for key, upload in self._running.items():
            if key[1] == peer:
                upload.scope.cancel()

    async def stop(self, key: Key) -> None:
        """The transfer ended: drop its upload, if one runs, and forget its progress."""
        upload = self._running.pop(key, None)
        if upload is not None:
            upload.scope.cancel()
            await upload.finished.wait()
        self._progress.pop(key, None)

    def answered(self, key: Key) -> None:
        """The receiver's reply to our offer arrived (a connection may be waiting for it)."""
        waiting = self._answered.pop(key, None)
        if waiting is not None:
            waiting.set()

    async def serve(self, link: PeerLink) -> None:
        """Serve a transfer connection: the peer pulls files of an offer it accepted."""
        key = (link.hello.transfer, link.fingerprint, True)
        record = await self._store.run(Database.get_transfer, *key)
        if record is not None and record.state is TransferState.OFFERED:
            # The receiver dials as it accepts: its reply, on the session, may come second.
            answered = self._answered.setdefault(key, trio.Event())
            with trio.move_on_after(self._config.handshake_timeout):
                await answered.wait()
            if not answered.is_set():
                self._answered.pop(key, None)
            record = await self._store.run(Database.get_transfer, *key)
            if record is not None and record.state is TransferState.OFFERED:
                await link.say_goodbye(BYE_BUSY)  # still no reply: come back later
                return
        if record is None or record.state is not TransferState.ACCEPTED:
            await link.say_goodbye(BYE_UNKNOWN_OFFER)
            return
        if self._serving >= self._config.max_uploads or key in self._running:
            await link.say_goodbye(BYE_BUSY)
            return
        self._serving += 1
        upload = self._running[key] = _Upload()
        try:
            with upload.scope:
                await self._push(link, record)
        except (LinkClosed, trio.TooSlowError):
            pass
        except RemoteProtocolError as exc:
            log.warning("transfer connection from %s: %s", link.fingerprint[:8], exc)
        except Exception:  # e.g. our disk: lose this connection, not the node
            log.exception("serving a transfer to %s failed", link.fingerprint[:8])
        finally:
            self._serving -= 1
            upload.finished.set()
            if self._running.get(key) is upload:
                del self._running[key]

    async def _push(self, link: PeerLink, record: TransferRecord) -> None:
        wanted = {f.index: f for f in record.files if f.accepted}
        # Bytes the receiver has of each file, as far as we know: what we had sent by the
        # last connection (on disk), until its pull tells us where it really stands.
        pushed = {f.index: f.done for f in wanted.values() if f.done}
        progress = self._progress.setdefault(
            record.key,
            Progress(
                sum(pushed.values()), sum(f.size for f in wanted.values()), trio.current_time()
            ),
        )
        saved = dict(pushed)
        try:
            await self._push_files(link, record, wanted, pushed, progress, saved)
        finally:
            # Interrupted or done: keep what was sent, so a restarted node shows it.
            with trio.move_on_after(STOP_TIMEOUT, shield=True):
                await self._save_sent(record, pushed, saved)

    async def _push_files(
        self,
        link: PeerLink,
        record: TransferRecord,
        wanted: dict[int, FileRecord],
        pushed: dict[int, int],
        progress: Progress,
        saved: dict[int, int],
    ) -> None:
        last_save = trio.current_time()
        while True:
            with trio.fail_after(IDLE_TIMEOUT):
                message = await link.receive()
            if isinstance(message, Bye):
                return
            if not isinstance(message, Pull) or message.index not in wanted:
                raise RemoteProtocolError("a transfer connection carries pulls of accepted files")
            file = wanted[message.index]
            if message.offset > file.size:
                raise RemoteProtocolError("pull past the end of the file")
            pushed[file.index] = message.offset
            progress.done = sum(pushed.values())
            assert file.source is not None and file.mtime_ns is not None
            try:
                source = fs.OutgoingFile(file.source, file.size, file.mtime_ns)
            except fs.SourceChanged as exc:
                await link.send(Unavailable(file.index, str(exc)))
                continue
            try:
                position = message.offset
                while position < file.size:
                    block = source.read(position, min(SEND_BLOCK, file.size - position))
                    await link.send_all(
                        [
                            Chunk(block[i : i + MAX_CHUNK_BYTES])
                            for i in range(0, len(block), MAX_CHUNK_BYTES)
                        ]
                    )
                    position += len(block)
                    pushed[file.index] = position
                    self._meter.sent += len(block)
                    progress.add(len(block))
                    await self._meter.report(record, progress, file.index, position, file.size)
                    if trio.current_time() - last_save >= SENT_SAVE_INTERVAL:
                        await self._save_sent(record, pushed, saved)
                        last_save = trio.current_time()
            except fs.SourceChanged as exc:
                await link.send(Unavailable(file.index, str(exc)))
            except OSError as exc:
                await link.send(Unavailable(file.index, f"cannot read it: {exc.strerror}"))
            finally:
                source.close()

    async def _save_sent(
        self, record: TransferRecord, pushed: dict[int, int], saved: dict[int, int]
    ) -> None:
        """Record the bytes sent of each file that moved since the last save (`saved`)."""
        changed = {i: done for i, done in pushed.items() if saved.get(i) != done}
        if not changed:
            return
        try:
            await self._store.run(Database.record_sent, record.offer, record.peer, changed)
        except Exception:  # only what a restarted node shows: the transfer goes on
            log.exception("could not record the progress of an upload")
            return
        saved.update(changed)


class _Upload:
    """One connection being served: cancelled through `scope`, `finished` once over."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
