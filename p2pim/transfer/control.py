"""Transfers: offers and answers on the session, file data on connections of their own.

Control messages (offer parts, the reply, the result, a cancel) are queued durably in the
peer's outbox and acknowledged like texts, so they survive restarts.  File data travels on
a *transfer connection* that the receiver dials to the sender, authenticated with the same
keys and naming the offer in its hello: the receiver pulls each accepted file from the byte
it already holds safely (`pull`), the sender serves the pulls (`push`), so an interrupted
transfer resumes by itself whenever the two are connected again.  Chat never waits behind
file data: they share no stream, and TCP's own flow control is the transfer's bounded
window (see docs/architecture.md, "Transfers").

This module is the control plane: it moves each transfer through the table of
`p2pim.transfer.state` and starts and stops the downloads and uploads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from p2pim import events
from p2pim.api import TransferError, TransferInfo
from p2pim.clock import new_message_id, now_ms
from p2pim.config import NodeConfig
from p2pim.delivery import Delivery
from p2pim.net.link import PeerLink
from p2pim.routes import Handler, Routes
from p2pim.sessions import Sessions
from p2pim.storage import Database, FileRecord, Store, TransferRecord
from p2pim.storage.transfers import Key
from p2pim.transfer import files as fs
from p2pim.transfer.expiry import Deadlines
from p2pim.transfer.offers import (
    clean_path,
    from_bitmap,
    offer_parts,
    placement,
    result,
    to_bitmap,
    transfer_info,
    verdict,
)
from p2pim.transfer.progress import Meter
from p2pim.transfer.pull import Download, Puller, partial_file
from p2pim.transfer.push import Uploads
from p2pim.transfer.state import UNANSWERED, Input, TransferState
from p2pim.wire import codec
from p2pim.wire.messages import (
    CANCEL_DEFAULT,
    CANCEL_EXPIRED,
    MAX_OFFER_FILES,
    MAX_OFFER_PATH_BYTES,
    ROOM_ID_SIZE,
    FileOffer,
    Message,
    OfferedFile,
    OfferReply,
    TransferCancel,
    TransferResult,
)

log = logging.getLogger(__name__)

Control = TypeVar("Control", FileOffer, OfferReply, TransferResult, TransferCancel)


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
        self._meter = Meter(emit)
        self._downloads: dict[Key, Download] = {}
        self._puller: Puller | None = None  # once started
        self._uploads = Uploads(store, config, self._meter)
        self._deadlines = Deadlines(self._expire)
        self._nursery: trio.Nursery | None = None
        self._routes: dict[type[Message], Handler] = {
            FileOffer: self._acked(self._on_offer),
            OfferReply: self._acked(self._on_reply),
            TransferResult: self._acked(self._on_result),
            TransferCancel: self._acked(self._on_cancel),
        }

    @property
    def bytes_sent(self) -> int:
        return self._meter.sent

    @property
    def bytes_received(self) -> int:
        return self._meter.received

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._puller = Puller(
            store=self._store,
            sessions=self._sessions,
            slots=trio.CapacityLimiter(self._config.max_transfers),
            nursery=nursery,
            meter=self._meter,
            completed=self._download_completed,
            sender_gone=self._sender_gone,
        )
        for record in await self._store.run(Database.transfers, live_only=True):
            if record.state in UNANSWERED:
                self._deadlines.set(record.key, record.expires_at)
        nursery.start_soon(self._deadlines.run)

    def routes(self) -> Routes:
        """The session messages this handles: each is durable, so acked once applied."""
        return self._routes

    def _acked(self, handle: Callable[[PeerLink, Control], Awaitable[None]]) -> Handler:
        async def handler(link: PeerLink, message: Control) -> None:
            await handle(link, message)
            self._delivery.ack(link, message.id)

        return handler

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
            FileRecord(
                index=i, path=o.path, size=o.size, hash=o.hash, source=f.source, mtime_ns=f.mtime_ns
            )
            for i, (o, f) in enumerate(zip(offered, local, strict=True))
        ]
        offer, now = new_message_id(), now_ms()
        parts = {
            peer: [
                (part.id, codec.encode(part))
                for part in offer_parts(
                    offer, offered, now, round(ttl * 1000), room, new_message_id
                )
            ]
            for peer in peers
        }
        expires_at = now + round(ttl * 1000)
        await self._store.run(
            Database.create_offer, offer, list(peers), records, parts, now, expires_at, room
        )
        for peer in peers:
            self._deadlines.set((offer, peer, True), expires_at)
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
            await trio.to_thread.run_sync(lambda: os.makedirs(target, exist_ok=True))
        if not await trio.to_thread.run_sync(os.path.isdir, target):
            raise TransferError(f"{target} is not a directory")
        need = sum(record.files[i].size for i in wanted)
        free = await trio.to_thread.run_sync(fs.free_space, target)
        if need > free:
            raise TransferError(f"not enough space in {target}: {need} bytes needed, {free} free")
        places = await trio.to_thread.run_sync(
            placement,
            {i: record.files[i].path for i in wanted},
            lambda name: fs.exists(target, name),
        )
        folder = await trio.to_thread.run_sync(os.path.abspath, target)
        reply = OfferReply(new_message_id(), offer, to_bitmap(wanted, record.total_files))
        answered = await self._store.run(
            Database.answer_offer,
            offer,
            peer,
            places,
            folder,
            (reply.id, codec.encode(reply)),
            now_ms(),
        )
        self._deadlines.drop(answered.key)
        self._delivery.queued(peer)
        self.resume(peer)
        return answered

    async def decline(self, peer: str, offer: bytes) -> None:
        record = await self._offered(peer, offer)
        reply = OfferReply(new_message_id(), offer, b"")
        declined = await self._store.run(
            Database.answer_offer, offer, peer, {}, None, (reply.id, codec.encode(reply)), now_ms()
        )
        self._deadlines.drop(record.key)
        self._delivery.queued(peer)
        await self._finished(declined)

    async def _offered(self, peer: str, offer: bytes) -> TransferRecord:
        record = await self._store.run(Database.get_transfer, offer, peer, False)
        if record is None or record.state is not TransferState.OFFERED:
            state = record.state if record else "unknown"
            raise TransferError(f"that offer is not waiting for an answer (it is {state})")
        return record

    async def cancel(self, peer: str, offer: bytes, reason: str = CANCEL_DEFAULT) -> None:
        for outgoing in (True, False):
            record = await self._store.run(Database.get_transfer, offer, peer, outgoing)
            if record is not None and record.state in (
                TransferState.OFFERED,
                TransferState.ACCEPTED,
            ):
                await self._end(record, Input.CANCEL, reason, notify=True)
                return
        raise TransferError("no live transfer with that peer and offer")

    async def transfers(self) -> list[TransferInfo]:
        return [self._info(record) for record in await self._store.run(Database.transfers)]

    # ---- session hooks ------------------------------------------------------------------

    def resume(self, peer: str) -> None:
        """`peer` is connected: pull whatever we accepted from it and do not have yet."""
        assert self._nursery is not None
        self._nursery.start_soon(self._resume, peer)

    async def _resume(self, peer: str) -> None:
        try:
            records = await self._store.run(Database.transfers, live_only=True)
        except Exception:  # the disk failed: the next session tries again
            log.exception("could not resume transfers from %s", peer[:8])
            return
        assert self._nursery is not None and self._puller is not None
        for record in records:
            if (
                record.peer == peer
                and not record.outgoing
                and record.state is TransferState.ACCEPTED
                and record.key not in self._downloads
            ):
                download = self._downloads[record.key] = Download(record, self._puller)
                self._nursery.start_soon(self._download, download)

    async def _download(self, download: Download) -> None:
        try:
            await download.run()
        finally:
            if self._downloads.get(download.key) is download:
                del self._downloads[download.key]

    def session_closed(self, peer: str) -> None:
        """Transfer connections live under the session: when it goes, so do they (a dead
        link is noticed by the session's heartbeats), and they resume with the next one."""
        for key, download in self._downloads.items():
            if key[1] == peer:
                download.cancel()
        self._uploads.cancel(peer)

    async def serve(self, link: PeerLink) -> None:
        """Serve a transfer connection: the peer pulls files of an offer it accepted."""
        await self._uploads.serve(link)

    # ---- received control messages ------------------------------------------------------

    async def _on_offer(self, link: PeerLink, part: FileOffer) -> None:
        files = [
            FileRecord(index=part.first + i, path=clean_path(f.path), size=f.size, hash=f.hash)
            for i, f in enumerate(part.files)
        ]
        now = now_ms()
        key = (part.offer, link.fingerprint, False)
        # A room the sender names is a claim: it counts only if both of us are members
        # there now; otherwise the offer is a private one (docs/protocol.md, 10.1).
        shared = len(part.room) == ROOM_ID_SIZE and self._shares_room(part.room, link.fingerprint)
        record = await self._store.run(
            Database.store_offer_part,
            part.id,
            part.offer,
            link.fingerprint,
            part.total_files,
            files,
            now,
            now + part.ttl_ms,
            part.room if shared else b"",
        )
        if record is None:
            if key not in self._deadlines:  # an offer whose last parts never come expires too
                self._deadlines.set(key, now + part.ttl_ms)
            return
        self._deadlines.set(record.key, record.expires_at)
        await self._emit(
            events.OfferReceived(
                peer=link.fingerprint,
                nick=link.remote_nick,
                offer=part.offer.hex(),
                files=tuple(events.TransferFile(f.index, f.path, f.size) for f in record.files),
                total_size=sum(f.size for f in record.files),
                expires_in=part.ttl_ms / 1000,
                room=record.room.hex(),
            )
        )

    async def _on_reply(self, link: PeerLink, message: OfferReply) -> None:
        accepted = from_bitmap(message.accepted, MAX_OFFER_FILES)
        record = await self._store.run(
            Database.record_reply, message.id, message.offer, link.fingerprint, accepted, now_ms()
        )
        if record is None:
            return
        self._deadlines.drop(record.key)
        self._uploads.answered(record.key)
        if record.state in (TransferState.ACCEPTED, TransferState.DECLINED):
            accepted_files = tuple(f.index for f in record.files if f.accepted)
            await self._emit(events.OfferAnswered(record.peer, record.offer.hex(), accepted_files))
            if record.state is TransferState.DECLINED:
                await self._finished(record)
        elif record.state in (TransferState.EXPIRED, TransferState.CANCELLED):
            # Too late: tell the receiver again.
            reason = CANCEL_EXPIRED if record.state is TransferState.EXPIRED else CANCEL_DEFAULT
            cancel = TransferCancel(new_message_id(), record.offer, reason)
            await self._store.run(
                Database.queue_operation, cancel.id, record.peer, codec.encode(cancel), now_ms()
            )
            self._delivery.queued(record.peer)

    async def _on_result(self, link: PeerLink, message: TransferResult) -> None:
        peer = link.fingerprint
        record = await self._store.run(Database.get_transfer, message.offer, peer, True)
        if record is not None:
            outcomes, reason = verdict(record.files, record.total_files, message.outcomes)
            record = await self._store.run(
                Database.record_result, message.id, message.offer, peer, outcomes, reason, now_ms()
            )
        if record is not None:
            await self._stop(record.key)
            await self._finished(record)

    async def _on_cancel(self, link: PeerLink, message: TransferCancel) -> None:
        record = await self._store.run(
            Database.record_cancel,
            message.id,
            message.offer,
            link.fingerprint,
            message.reason,
            now_ms(),
        )
        if record is not None:
            await self._ended(record)

    # ---- ending -------------------------------------------------------------------------

    async def _download_completed(self, key: Key) -> None:
        """Every wanted file of a download has an outcome: end it, tell the sender."""
        record = await self._store.run(Database.get_transfer, *key)
        assert record is not None
        outcomes, reason = result(record.files)
        message = TransferResult(new_message_id(), record.offer, outcomes)
        ended = await self._store.run(
            Database.finish_transfer,
            record.offer,
            record.peer,
            False,
            Input.RESULT_FAILED if reason else Input.RESULT_OK,
            reason,
            (message.id, codec.encode(message)),
            now_ms(),
        )
        self._delivery.queued(record.peer)
        if ended is not None:
            await self._finished(ended)

    async def _sender_gone(self, record: TransferRecord, reason: str) -> None:
        await self._end(record, Input.SENDER_GONE, reason, notify=True)

    async def _end(
        self, record: TransferRecord, event: Input, reason: str, *, notify: bool
    ) -> None:
        """End a live transfer of ours: tell the peer (if `notify`), stop, clean up."""
        message = None
        if notify:
            cancel = TransferCancel(new_message_id(), record.offer, reason[:128])
            message = (cancel.id, codec.encode(cancel))
        ended = await self._store.run(
            Database.finish_transfer,
            record.offer,
            record.peer,
            record.outgoing,
            event,
            reason,
            message,
            now_ms(),
        )
        if notify:
            self._delivery.queued(record.peer)
        if ended is not None:
            await self._ended(ended)

    async def _ended(self, record: TransferRecord) -> None:
        """A transfer was cancelled or expired: stop its tasks, drop partial files."""
        self._deadlines.drop(record.key)
        await self._stop(record.key)  # the download is over before its files go
        if not record.outgoing and record.directory is not None:
            for file in record.files:
                if file.accepted and file.saved_as is None:
                    partial = partial_file(record, file)
                    await trio.to_thread.run_sync(partial.discard)
        await self._finished(record)

    async def _stop(self, key: Key) -> None:
        download = self._downloads.pop(key, None)
        if download is not None:
            await download.stop()
        await self._uploads.stop(key)

    async def _finished(self, record: TransferRecord) -> None:
        info = self._info(record)
        await self._emit(
            events.TransferFinished(
                peer=info.peer,
                offer=info.offer,
                outgoing=info.outgoing,
                state=info.state,
                reason=info.reason,
                files=info.files,
                room=info.room,
            )
        )

    async def _expire(self, key: Key) -> None:
        record = await self._store.run(Database.get_transfer, *key)
        if record is not None and record.state in UNANSWERED:
            await self._end(record, Input.EXPIRE, CANCEL_EXPIRED, notify=True)

    # ---- info ---------------------------------------------------------------------------

    def _info(self, record: TransferRecord) -> TransferInfo:
        download = self._downloads.get(record.key)
        live = download.progress if download else self._uploads.progress(record.key)
        return transfer_info(record, live.done if live else None)
