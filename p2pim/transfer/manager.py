"""Transfers: offers and answers on the session, file data on connections of their own.

Control messages (offer parts, the reply, the result, a cancel) are queued durably in the
peer's outbox and acknowledged like texts, so they survive restarts.  File data travels on
a *transfer connection* that the receiver dials to the sender, authenticated with the same
keys and naming the offer in its hello: the receiver pulls each accepted file from the byte
it already holds safely, so an interrupted transfer resumes by itself whenever the two are
connected again.  Chat never waits behind file data: they share no stream, and TCP's own
flow control is the transfer's bounded window (see docs/architecture.md, "Transfers").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from p2pim import events
from p2pim.api import PeerRejectedError
from p2pim.config import NodeConfig
from p2pim.delivery import Delivery
from p2pim.messaging import new_message_id, now_ms
from p2pim.net.link import LinkClosed, PeerLink
from p2pim.sessions import Sessions
from p2pim.storage import FileRecord, StorageError, Store, TransferRecord
from p2pim.transfer import files as fs
from p2pim.transfer.offers import clean_path, from_bitmap, pack_parts, placement, to_bitmap
from p2pim.transfer.progress import Progress
from p2pim.wire import codec
from p2pim.wire.errors import RemoteProtocolError
from p2pim.wire.messages import (
    BYE_BUSY,
    BYE_DONE,
    BYE_UNKNOWN_OFFER,
    MAX_CHUNK_BYTES,
    MAX_OFFER_FILES,
    MAX_OFFER_PATH_BYTES,
    OUTCOMES,
    ROOM_ID_SIZE,
    Bye,
    Chunk,
    FileOffer,
    Message,
    OfferedFile,
    OfferReply,
    Pull,
    TransferCancel,
    TransferResult,
    Unavailable,
)

log = logging.getLogger(__name__)

STOP_CHECKPOINT_TIMEOUT = 5.0  # an interrupted download may take this long to save itself
CHECKPOINT_BYTES = 8 << 20  # a receiver killed mid-file loses at most this much progress
TRANSFER_RECEIVE_SIZE = 1 << 20
SEND_BLOCK = 16 * MAX_CHUNK_BYTES  # read from disk and written to the socket at once
IDLE_TIMEOUT = 300.0  # a transfer connection carrying nothing this long is dropped
SENT_SAVE_INTERVAL = 5.0  # seconds between records of an upload's progress (for restarts)
RETRY_BASE, RETRY_MAX = 1.0, 30.0  # a failed transfer connection is redialled with backoff
Key = tuple[bytes, str, bool]  # (offer, peer, outgoing)


class TransferError(Exception):
    """A transfer request cannot be done (no such offer, no space, bad path...)."""


class OfferGone(Exception):
    """The sender no longer offers what we accepted (it cancelled, or lost its state)."""


@dataclass(frozen=True, slots=True)
class TransferInfo:
    """One transfer as `Node.transfers()` reports it."""

    offer: str
    peer: str
    outgoing: bool
    state: str
    reason: str
    total: int  # bytes of the accepted (or, before an answer, offered) files
    done: int
    files: tuple[events.TransferFile, ...]
    expires_at: int  # ms since the epoch: an unanswered offer expires then
    room: str = ""  # hex id of the room the offer was shared in; "": a private offer


class Transfers:
    def __init__(
        self,
        store: Store,
        config: NodeConfig,
        sessions: Sessions,
        emit: Callable[[events.NodeEvent], Awaitable[None]],
        delivery: Delivery,
        shares_room: Callable[[bytes, str], bool] = lambda room, peer: False,
    ) -> None:
        """`shares_room(room, peer)`: we and `peer` are both members of `room` now (an
        offer that claims a room counts as shared there only then)."""
        self._store = store
        self._shares_room = shares_room
        self._config = config
        self._sessions = sessions
        self._emit = emit
        self._delivery = delivery  # sends what goes through the outbox, acks what came
        self._running: dict[Key, _Task] = {}  # downloads, and uploads being served
        self._progress: dict[Key, Progress] = {}
        self._download_slots = trio.CapacityLimiter(config.max_transfers)
        self._uploads = 0
        self._deadlines: dict[Key, int] = {}  # unanswered offers: when they expire (ms)
        self._deadlines_changed = trio.Event()
        self._answered: dict[Key, trio.Event] = {}  # transfer connections awaiting the reply
        self._nursery: trio.Nursery | None = None
        self.bytes_sent = 0
        self.bytes_received = 0

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for record in await self._store.transfers(live_only=True):
            if record.state in ("offered", "arriving"):
                self._deadlines[record.key] = record.expires_at
        nursery.start_soon(self._expire_offers)

    # ---- sending ------------------------------------------------------------------------

    async def send_files(
        self, peers: Sequence[str], paths: Sequence[str], ttl: float, room: bytes = b""
    ) -> bytes:
        """Offer files and folders to each of `peers` (shared in `room`, if given); returns
        the offer id.  Hashes every file first (the offer carries the hashes), so it takes
        a while for large files."""
        peers = list(dict.fromkeys(peers))  # each peer once
        if not peers or not paths:
            raise TransferError("send files to at least one peer")
        try:
            local = await trio.to_thread.run_sync(fs.collect, list(paths))
        except OSError as exc:
            raise TransferError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        except ValueError as exc:
            raise TransferError(str(exc)) from exc
        return await self.offer(peers, local, ttl, room)

    async def offer(
        self, peers: Sequence[str], local: list[fs.LocalFile], ttl: float, room: bytes = b""
    ) -> bytes:
        """Offer these files, under the paths they name, to each of `peers`."""
        if not 0 < len(local) <= MAX_OFFER_FILES:
            raise TransferError(f"an offer holds 1 to {MAX_OFFER_FILES} files, not {len(local)}")
        for file in local:
            if len(file.path.encode("utf-8", "surrogateescape")) > MAX_OFFER_PATH_BYTES:
                raise TransferError(f"{file.path} is longer than {MAX_OFFER_PATH_BYTES} bytes")
        try:
            hashes = [await trio.to_thread.run_sync(fs.hash_file, f.source) for f in local]
        except OSError as exc:
            raise TransferError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        offered = [
            OfferedFile(f.path.encode("utf-8", "replace").decode(), f.size, h)
            for f, h in zip(local, hashes, strict=True)
        ]
        records = [
            FileRecord(i, o.path, o.size, o.hash, f.source, f.mtime_ns)
            for i, (o, f) in enumerate(zip(offered, local, strict=True))
        ]
        offer, now = new_message_id(), now_ms()
        total = sum(f.size for f in offered)
        parts: dict[str, list[tuple[bytes, bytes]]] = {}
        for peer in peers:
            parts[peer], first = [], 0
            for run in pack_parts(offered):
                part = FileOffer(
                    new_message_id(), offer, now, round(ttl * 1000), len(offered), total,
                    first, tuple(run), room,
                )  # fmt: skip
                parts[peer].append((part.id, codec.encode(part)))
                first += len(run)
        expires_at = now + round(ttl * 1000)
        await self._store.create_offer(offer, list(peers), records, parts, now, expires_at, room)
        for peer in peers:
            self._set_deadline((offer, peer, True), expires_at)
            self._delivery.queued(peer)
        return offer

    # ---- answering ----------------------------------------------------------------------

    async def accept(
        self, peer: str, offer: bytes, indices: Sequence[int] | None, directory: str | None
    ) -> TransferRecord:
        record = await self._offered(peer, offer)
        wanted = sorted(set(range(record.total_files) if indices is None else indices))
        if not wanted or not all(0 <= i < record.total_files for i in wanted):
            raise TransferError(f"choose files among 0..{record.total_files - 1}")
        target = directory or str(self._config.download_dir)
        if directory is None:
            os.makedirs(target, exist_ok=True)
        if not os.path.isdir(target):
            raise TransferError(f"{target} is not a directory")
        need = sum(record.files[i].size for i in wanted)
        free = await trio.to_thread.run_sync(fs.free_space, target)
        if need > free:
            raise TransferError(f"not enough space in {target}: {need} bytes needed, {free} free")
        places = placement(
            {i: record.files[i].path for i in wanted}, lambda name: fs.exists(target, name)
        )
        reply = OfferReply(new_message_id(), offer, to_bitmap(wanted, record.total_files))
        answered = await self._store.answer_offer(
            offer, peer, places, os.path.abspath(target), (reply.id, codec.encode(reply)), now_ms()
        )
        self._deadlines.pop(answered.key, None)
        self._delivery.queued(peer)
        self.resume(peer)
        return answered

    async def decline(self, peer: str, offer: bytes) -> None:
        record = await self._offered(peer, offer)
        reply = OfferReply(new_message_id(), offer, b"")
        declined = await self._store.answer_offer(
            offer, peer, {}, None, (reply.id, codec.encode(reply)), now_ms()
        )
        self._deadlines.pop(record.key, None)
        self._delivery.queued(peer)
        await self._finished(declined)

    async def _offered(self, peer: str, offer: bytes) -> TransferRecord:
        record = await self._store.get_transfer(offer, peer, False)
        if record is None or record.state != "offered":
            state = record.state if record else "unknown"
            raise TransferError(f"that offer is not waiting for an answer (it is {state})")
        return record

    async def cancel(self, peer: str, offer: bytes, reason: str = "cancelled") -> None:
        for outgoing in (True, False):
            record = await self._store.get_transfer(offer, peer, outgoing)
            if record is not None and record.state in ("offered", "accepted"):
                await self._end(record, "cancelled", reason, notify=True)
                return
        raise TransferError("no live transfer with that peer and offer")

    async def transfers(self) -> list[TransferInfo]:
        return [self._info(record) for record in await self._store.transfers()]

    # ---- session hooks ------------------------------------------------------------------

    def resume(self, peer: str) -> None:
        """`peer` is connected: pull whatever we accepted from it and do not have yet."""
        assert self._nursery is not None
        self._nursery.start_soon(self._resume, peer)

    async def _resume(self, peer: str) -> None:
        try:
            records = await self._store.transfers(live_only=True)
        except Exception:  # the disk failed: the next session tries again
            log.exception("could not resume transfers from %s", peer[:8])
            return
        for record in records:
            if (
                record.peer == peer
                and not record.outgoing
                and record.state == "accepted"
                and record.key not in self._running
            ):
                task = self._running[record.key] = _Task()
                assert self._nursery is not None
                self._nursery.start_soon(self._download, record, task)

    def session_closed(self, peer: str) -> None:
        """Transfer connections live under the session: when it goes, so do they (a dead
        link is noticed by the session's heartbeats), and they resume with the next one."""
        for key, task in list(self._running.items()):
            if key[1] == peer:
                task.scope.cancel()

    async def received(self, link: PeerLink, message: Message) -> bool:
        """Handle a transfer control message from a session; False if it is not one."""
        peer = link.fingerprint
        if isinstance(message, FileOffer):
            await self._on_offer(link, message)
        elif isinstance(message, OfferReply):
            accepted = from_bitmap(message.accepted, MAX_OFFER_FILES)
            record = await self._store.record_reply(
                message.id, message.offer, peer, accepted, now_ms()
            )
            if record is not None:
                await self._on_reply(record)
        elif isinstance(message, TransferResult):
            record = await self._store.get_transfer(message.offer, peer, True)
            if record is not None:
                record = await self._store.record_result(
                    message.id, message.offer, peer, *_verdict(record, message.outcomes), now_ms()
                )
            if record is not None:
                await self._stop(record.key)
                await self._finished(record)
        elif isinstance(message, TransferCancel):
            record = await self._store.record_cancel(
                message.id, message.offer, peer, message.reason, now_ms()
            )
            if record is not None:
                await self._ended(record)
        else:
            return False
        self._delivery.ack(link, message.id)
        return True

    async def _on_offer(self, link: PeerLink, part: FileOffer) -> None:
        files = [
            FileRecord(part.first + i, clean_path(f.path), f.size, f.hash)
            for i, f in enumerate(part.files)
        ]
        now = now_ms()
        key = (part.offer, link.fingerprint, False)
        # A room the sender names is a claim: it counts only if both of us are members
        # there now; otherwise the offer is a private one (docs/protocol.md, 10.1).
        shared = len(part.room) == ROOM_ID_SIZE and self._shares_room(part.room, link.fingerprint)
        record = await self._store.store_offer_part(
            part.id, part.offer, link.fingerprint, part.total_files, files, now,
            now + part.ttl_ms, part.room if shared else b"",
        )  # fmt: skip
        if record is None:
            if key not in self._deadlines:  # an offer whose last parts never come expires too
                self._set_deadline(key, now + part.ttl_ms)
            return
        self._set_deadline(record.key, record.expires_at)
        await self._emit(
            events.OfferReceived(
                link.fingerprint,
                link.remote_nick,
                part.offer.hex(),
                tuple(events.TransferFile(f.index, f.path, f.size) for f in record.files),
                sum(f.size for f in record.files),
                part.ttl_ms / 1000,
                record.room.hex(),
            )
        )

    async def _on_reply(self, record: TransferRecord) -> None:
        self._deadlines.pop(record.key, None)
        answered = self._answered.pop(record.key, None)
        if answered is not None:
            answered.set()
        if record.state in ("accepted", "declined"):
            accepted = tuple(f.index for f in record.files if f.accepted)
            await self._emit(events.OfferAnswered(record.peer, record.offer.hex(), accepted))
            if record.state == "declined":
                await self._finished(record)
        elif record.state in ("expired", "cancelled"):  # too late: tell the receiver again
            await self._queue_cancel(record.offer, record.peer, record.state)

    async def _queue_cancel(self, offer: bytes, peer: str, reason: str) -> None:
        cancel = TransferCancel(new_message_id(), offer, reason)
        await self._store.queue_operation(cancel.id, peer, codec.encode(cancel), now_ms())
        self._delivery.queued(peer)

    # ---- ending -------------------------------------------------------------------------

    async def _end(self, record: TransferRecord, state: str, reason: str, *, notify: bool) -> None:
        """End a live transfer of ours: tell the peer (if `notify`), stop, clean up."""
        message = None
        if notify:
            cancel = TransferCancel(new_message_id(), record.offer, reason[:128])
            message = (cancel.id, codec.encode(cancel))
        ended = await self._store.finish_transfer(
            record.offer, record.peer, record.outgoing, state, reason, message, now_ms()
        )
        if notify:
            self._delivery.queued(record.peer)
        if ended is not None:
            await self._ended(ended)

    async def _ended(self, record: TransferRecord) -> None:
        """A transfer was cancelled or expired: stop its tasks, drop partial files."""
        self._deadlines.pop(record.key, None)
        await self._stop(record.key)  # the download is over before its files go
        if not record.outgoing and record.directory is not None:
            for file in record.files:
                if file.accepted and file.saved_as is None:
                    partial = self._incoming(record, file)
                    await trio.to_thread.run_sync(partial.discard)
        await self._finished(record)

    async def _stop(self, key: Key) -> None:
        task = self._running.pop(key, None)
        if task is not None:
            task.scope.cancel()
            await task.finished.wait()
        self._progress.pop(key, None)

    async def _finished(self, record: TransferRecord) -> None:
        info = self._info(record)
        await self._emit(
            events.TransferFinished(
                info.peer,
                info.offer,
                info.outgoing,
                info.state,
                info.reason,
                info.files,
                info.room,
            )
        )

    def _set_deadline(self, key: Key, expires_at: int) -> None:
        self._deadlines[key] = expires_at
        self._deadlines_changed.set()

    async def _expire_offers(self) -> None:
        while True:
            self._deadlines_changed = trio.Event()
            now = now_ms()
            for key, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    del self._deadlines[key]
                    try:
                        record = await self._store.get_transfer(*key)
                        if record is not None and record.state in ("offered", "arriving"):
                            await self._end(record, "expired", "expired", notify=True)
                    except Exception:  # the disk failed: the offer stays, the node goes on
                        log.exception("could not expire an offer")
            soonest = min(self._deadlines.values(), default=None)
            with trio.move_on_after(3600 if soonest is None else (soonest - now_ms()) / 1000):
                await self._deadlines_changed.wait()

    # ---- receiving file data ------------------------------------------------------------

    async def _download(self, record: TransferRecord, task: _Task) -> None:
        """Pull the accepted files of `record` until done, redialling as needed, for as
        long as the session with the sender lasts (`session_closed` cancels `scope`)."""
        delay, gone = RETRY_BASE, None
        with task.scope:
            try:
                while (link := self._sessions.links.get(record.peer)) is not None:
                    try:
                        async with self._download_slots:
                            await self._pull_all(record.key, link.address, link.reach_port)
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
                task.finished.set()
                if self._running.get(record.key) is task:
                    del self._running[record.key]
        if gone is not None:  # outside the scope: ending the transfer cancels it
            try:
                current = await self._store.get_transfer(*record.key) or record
                await self._end(
                    current, "failed", f"the sender no longer offers it ({gone})", notify=True
                )
            except StorageError:  # a full disk: it stays accepted, the next session ends it
                log.exception("could not end the transfer from %s", record.peer[:8])

    async def _pull_all(self, key: Key, host: str, port: int) -> None:
        link = await self._sessions.open_transfer(host, port, key[1], key[0])
        link.receive_size = TRANSFER_RECEIVE_SIZE
        try:
            record = await self._store.get_transfer(*key)
            if record is None or record.state != "accepted":
                return
            wanted = [f for f in record.files if f.accepted]
            # Counted afresh: what the last connection received past its checkpoint is gone.
            progress = self._progress[key] = Progress(
                sum(f.size if f.outcome else f.done for f in wanted),
                sum(f.size for f in wanted),
                trio.current_time(),
            )
            for file in wanted:
                if file.outcome is not None:
                    continue
                outcome, saved_as = await self._pull_file(link, record, file, progress)
                await self._store.finish_file(
                    record.offer, record.peer, file.index, outcome, saved_as
                )
                if outcome in ("no-space", "write-error"):
                    break  # the disk is the problem: the other files would fail too
            await self._report_result(key)
            await link.say_goodbye(BYE_DONE)
        finally:
            await link.close()

    async def _pull_file(
        self, link: PeerLink, record: TransferRecord, file: FileRecord, progress: Progress
    ) -> tuple[str, str | None]:
        """Pull one file; returns its outcome and where it was saved."""
        incoming = self._incoming(record, file)
        try:
            offset = await trio.to_thread.run_sync(incoming.open, file.done)
        except OSError as exc:
            log.warning("cannot create %s: %s", file.path, exc)
            return _disk_outcome(exc), None
        progress.add(offset - file.done)
        checkpoint = _Checkpoint()
        try:
            failure = None
            if offset < file.size:  # else all is here already: nothing to pull
                await link.send(Pull(file.index, offset))
                failure = await self._receive(link, record, file, incoming, progress, checkpoint)
            await checkpoint.idle.wait()
            if failure is None:
                try:
                    saved = await trio.to_thread.run_sync(incoming.finish)
                    await self._report(
                        record, file.index, file.size, file.size, progress, force=True
                    )
                    return "ok", saved
                except fs.HashMismatch as exc:
                    log.warning("%s", exc)
                    failure = "hash-mismatch"
                except OSError as exc:
                    failure = _disk_outcome(exc)
            await trio.to_thread.run_sync(incoming.discard)
            return failure, None
        finally:
            # Interrupted (a dropped link, a stop): what arrived is sound, so keep it all
            # for the resume, not just what the last checkpoint made durable.
            with trio.move_on_after(STOP_CHECKPOINT_TIMEOUT, shield=True):
                await checkpoint.idle.wait()  # a checkpoint may still use the file
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
        checkpoint: _Checkpoint,
    ) -> str | None:
        """Write the file's bytes as they come; an outcome if it cannot be had."""
        synced = incoming.done
        with trio.CancelScope(deadline=trio.current_time() + IDLE_TIMEOUT) as idle:
            while incoming.done < file.size:
                message = await link.receive()
                if isinstance(message, Bye):
                    raise OfferGone(message.reason)
                if isinstance(message, Unavailable) and message.index == file.index:
                    return "unavailable"
                if not isinstance(message, Chunk):
                    raise RemoteProtocolError(f"expected file data, got {message.TYPE}")
                if len(message.data) > file.size - incoming.done:
                    raise RemoteProtocolError("more data than the file holds")
                try:
                    incoming.write(message.data)
                except OSError as exc:
                    return _disk_outcome(exc)
                self.bytes_received += len(message.data)
                progress.add(len(message.data))
                await self._report(record, file.index, incoming.done, file.size, progress)
                now = trio.current_time()
                if now + IDLE_TIMEOUT - idle.deadline > 1:  # moving it per chunk would cost
                    idle.deadline = now + IDLE_TIMEOUT
                if incoming.done - synced >= CHECKPOINT_BYTES:
                    # At most two checkpoints' worth of data is unsynced: the network waits
                    # for the disk, so the page cache never holds a backlog that would stall
                    # every fsync on this disk (the history's included) behind it.
                    await checkpoint.idle.wait()
                    synced = incoming.done
                    checkpoint.idle = trio.Event()
                    assert self._nursery is not None
                    self._nursery.start_soon(
                        self._checkpoint, record, file.index, incoming, synced, checkpoint.idle
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
            await self._store.save_progress(record.offer, record.peer, index, done)
        except Exception:  # progress not recorded: a resume redoes a little more
            log.exception("checkpoint of %s failed", incoming.partial_name)
        finally:
            finished.set()

    async def _report_result(self, key: Key) -> None:
        record = await self._store.get_transfer(*key)
        assert record is not None
        codes = {name: code for code, name in enumerate(OUTCOMES)}
        outcomes = bytes(codes[f.outcome or "cancelled"] if f.accepted else 0 for f in record.files)
        wanted = [f for f in record.files if f.accepted]
        reason = failure_reason([f.outcome or "cancelled" for f in wanted])
        state = "failed" if reason else "completed"
        result = TransferResult(new_message_id(), record.offer, outcomes)
        ended = await self._store.finish_transfer(
            record.offer, record.peer, False, state, reason,
            (result.id, codec.encode(result)), now_ms(),
        )  # fmt: skip
        self._delivery.queued(record.peer)
        self._progress.pop(key, None)
        if ended is not None:
            await self._finished(ended)

    def _incoming(self, record: TransferRecord, file: FileRecord) -> fs.IncomingFile:
        assert record.directory is not None
        # The peer chooses offer ids: two peers' partial files must never share a name.
        partial = f".p2pim-{record.peer[:16]}-{record.offer.hex()}-{file.index}.part"
        return fs.IncomingFile(record.directory, file.path, partial, file.size, file.hash)

    # ---- sending file data --------------------------------------------------------------

    async def serve(self, link: PeerLink) -> None:
        """Serve a transfer connection: the peer pulls files of an offer it accepted."""
        key = (link.hello.transfer, link.fingerprint, True)
        record = await self._store.get_transfer(*key)
        if record is not None and record.state == "offered":
            # The receiver dials as it accepts: its reply, on the session, may come second.
            answered = self._answered.setdefault(key, trio.Event())
            with trio.move_on_after(self._config.handshake_timeout):
                await answered.wait()
            if not answered.is_set():
                self._answered.pop(key, None)
            record = await self._store.get_transfer(*key)
            if record is not None and record.state == "offered":
                await link.say_goodbye(BYE_BUSY)  # still no reply: come back later
                return
        if record is None or record.state != "accepted":
            await link.say_goodbye(BYE_UNKNOWN_OFFER)
            return
        if self._uploads >= self._config.max_uploads or key in self._running:
            await link.say_goodbye(BYE_BUSY)
            return
        self._uploads += 1
        task = self._running[key] = _Task()
        try:
            with task.scope:
                await self._push(link, record)
        except (LinkClosed, trio.TooSlowError):
            pass
        except RemoteProtocolError as exc:
            log.warning("transfer connection from %s: %s", link.fingerprint[:8], exc)
        except Exception:  # e.g. our disk: lose this connection, not the node
            log.exception("serving a transfer to %s failed", link.fingerprint[:8])
        finally:
            self._uploads -= 1
            task.finished.set()
            if self._running.get(key) is task:
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
            with trio.move_on_after(STOP_CHECKPOINT_TIMEOUT, shield=True):
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
                    self.bytes_sent += len(block)
                    progress.add(len(block))
                    await self._report(record, file.index, position, file.size, progress)
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
            await self._store.record_sent(record.offer, record.peer, changed)
        except Exception:  # only what a restarted node shows: the transfer goes on
            log.exception("could not record the progress of an upload")
            return
        saved.update(changed)

    # ---- progress -----------------------------------------------------------------------

    async def _report(
        self,
        record: TransferRecord,
        index: int,
        file_done: int,
        file_size: int,
        progress: Progress,
        *,
        force: bool = False,
    ) -> None:
        if progress.due(trio.current_time()) or force:
            await self._emit(
                events.TransferProgress(
                    record.peer, record.offer.hex(), record.outgoing, progress.done,
                    progress.total, progress.rate, progress.eta, index, file_done, file_size,
                )
            )  # fmt: skip

    def _info(self, record: TransferRecord) -> TransferInfo:
        answered = record.state not in ("arriving", "offered")
        counted = [f for f in record.files if f.accepted or not answered]
        live = self._progress.get(record.key)
        files = tuple(
            events.TransferFile(
                f.index,
                f.path,
                f.size,
                f.size if f.outcome == "ok" else f.done,
                f.outcome,
                os.path.join(record.directory, f.saved_as)
                if record.directory and f.saved_as
                else None,
            )
            for f in record.files
        )
        counted_indices = {f.index for f in counted}
        done = live.done if live else sum(f.done for f in files if f.index in counted_indices)
        return TransferInfo(
            record.offer.hex(),
            record.peer,
            record.outgoing,
            record.state,
            record.reason,
            sum(f.size for f in counted),
            done,
            files,
            record.expires_at,
            record.room.hex(),
        )


class _Task:
    """A download or a served upload: cancelled through `scope`, `finished` once over."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.finished = trio.Event()


class _Checkpoint:
    """The incoming file's checkpoint: `idle` is set when none is running."""

    def __init__(self) -> None:
        self.idle = trio.Event()
        self.idle.set()


def _disk_outcome(exc: OSError) -> str:
    return "no-space" if exc.errno in fs.NO_SPACE else "write-error"


def _verdict(record: TransferRecord, codes: bytes) -> tuple[list[str], str]:
    """Per-file outcomes from a receiver's result (an accepted file it left out counts as
    cancelled), and why the transfer failed ("" if it did not)."""
    outcomes = [
        OUTCOMES[codes[i]] if i < len(codes) and codes[i] < len(OUTCOMES) else "cancelled"
        for i in range(record.total_files)
    ]
    accepted = [outcomes[f.index] for f in record.files if f.accepted]
    return outcomes, failure_reason(accepted)


def failure_reason(outcomes: Sequence[str]) -> str:
    """Why a transfer with these per-file outcomes failed ("" if it did not)."""
    failed = [o for o in outcomes if o not in ("ok", "not-accepted")]
    if not failed:
        return ""
    if "no-space" in failed:
        return "the receiver ran out of disk space"
    if "write-error" in failed:
        return "the receiver could not write a file"
    return f"{len(failed)} file(s) failed: " + ", ".join(sorted(set(failed)))
