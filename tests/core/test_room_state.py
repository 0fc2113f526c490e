"""Room logs: Ed25519 keys bound to X25519 identities, event verification, and the replay
rules of `p2pim.rooms.state` — above all, that replay converges whatever order the events
arrived in.

Identities and events are built once per module or test (Ed25519 signing costs ~50 µs);
replay itself is cheap, so hypothesis permutes prebuilt events.
"""

from __future__ import annotations

import hashlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pim.identity import Identity
from p2pim.rooms import state
from p2pim.rooms.state import InvalidRoomEvent, Member, Op, replay, room_id, verify
from p2pim.wire import codec, signing
from p2pim.wire.messages import Bye, RoomEvent, RoomOp

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ident(name: str) -> Identity:
    """A reproducible identity (fixed seed per name)."""
    return Identity.from_seed(hashlib.sha256(b"test_room_state " + name.encode()).digest())


ALICE, BOB, CAROL, DAVE, MALLORY = map(ident, ("alice", "bob", "carol", "dave", "mallory"))
NONCE = bytes(range(16))
ROOM = room_id(ALICE.public_key, NONCE)


def op(
    who: Identity,
    seq: int,
    lamport: int,
    kind: str,
    subject: bytes = b"",
    text: str = "",
    nonce: bytes = b"",
    room: bytes = ROOM,
) -> Op:
    assert who.seed is not None
    return state.sign(
        who.seed,
        RoomOp(room, who.public_key, who.verify_key, seq, lamport, 0, kind, subject, text, nonce),
    )


def create(lamport: int = 1, seq: int = 1, text: str = "lobby") -> Op:
    return op(ALICE, seq, lamport, "create", text=text, nonce=NONCE)


def flip(data: bytes, bit: int) -> bytes:
    buf = bytearray(data)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


def verdicts(s: state.RoomState, *ops: Op) -> list[bool]:
    ids = {o.id for o in s.accepted}
    for o in ops:
        assert (o.id in ids) != (o.id in s.rejected), "every event is accepted xor rejected"
    return [o.id in ids for o in ops]


# --- signing ----------------------------------------------------------------------------


def test_binds_generated_identities() -> None:
    for _ in range(5):
        me = Identity.generate()
        assert signing.binds(me.verify_key, me.public_key)


@FAST
@given(st.binary(min_size=32, max_size=32))
def test_binds_any_seed(seed: bytes) -> None:
    me = Identity.from_seed(seed)
    assert me.verify_key == signing.verify_key(seed)
    assert signing.binds(me.verify_key, me.public_key)


def test_binds_rejects_another_identitys_key() -> None:
    assert not signing.binds(MALLORY.verify_key, ALICE.public_key)
    assert not signing.binds(ALICE.verify_key, MALLORY.public_key)
    assert not signing.binds(ALICE.public_key, ALICE.public_key)  # the X25519 key itself


def test_binds_rejects_every_flipped_bit() -> None:
    key, public = ALICE.verify_key, ALICE.public_key
    # Bit 255 of the Ed25519 key is the sign of x, which the Montgomery u-coordinate does
    # not carry: -A maps to the same u as A.  Only the seed's owner can sign under -A, so
    # that is no forgery; every other bit changes y, hence u.
    for bit in range(255):
        assert not signing.binds(flip(key, bit), public), bit
    for bit in range(256):
        assert not signing.binds(key, flip(public, bit)), bit


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_binds_rejects_wrong_lengths(size: int) -> None:
    key, public = ALICE.verify_key, ALICE.public_key
    wrong = (key * 3)[:size]
    assert not signing.binds(wrong, public)
    assert not signing.binds(key, (public * 3)[:size])
    assert not signing.binds(key[:31], public[:31])


def test_binds_rejects_degenerate_y() -> None:
    one = (1).to_bytes(32, "little")  # y = 1: the identity point, u would divide by zero
    assert not signing.binds(one, bytes(32))
    p = (2**255 - 19).to_bytes(32, "little")  # y >= p: not canonical
    assert not signing.binds(p, ALICE.public_key)


@FAST
@given(st.binary(max_size=200), st.data())
def test_sign_verify_round_trip_and_tamper(data: bytes, draw: st.DataObject) -> None:
    assert ALICE.seed is not None
    sig = signing.sign(ALICE.seed, data)
    assert sig == ALICE.sign(data)
    assert len(sig) == signing.SIGNATURE_SIZE
    assert signing.verify(ALICE.verify_key, data, sig)
    assert not signing.verify(MALLORY.verify_key, data, sig)
    bit = draw.draw(st.integers(0, len(sig) * 8 - 1))
    assert not signing.verify(ALICE.verify_key, data, flip(sig, bit))
    if data:
        bit = draw.draw(st.integers(0, len(data) * 8 - 1))
        assert not signing.verify(ALICE.verify_key, flip(data, bit), sig)
    assert not signing.verify(ALICE.verify_key, data + b"x", sig)


def test_verify_rejects_wrong_lengths() -> None:
    assert ALICE.seed is not None
    sig = signing.sign(ALICE.seed, b"hi")
    assert not signing.verify(ALICE.verify_key, b"hi", sig[:63])
    assert not signing.verify(ALICE.verify_key, b"hi", sig + b"\0")
    assert not signing.verify(ALICE.verify_key[:31], b"hi", sig)
    assert not signing.verify(b"", b"hi", sig)


# --- verify -----------------------------------------------------------------------------


GENUINE = op(ALICE, 2, 2, "post", text="hello")


def test_verify_accepts_genuine_events() -> None:
    cases = [(create(), ALICE), (op(BOB, 1, 4, "join"), BOB), (GENUINE, ALICE)]
    cases.append((op(ALICE, 2, 2, "invite", BOB.public_key), ALICE))
    for signed, who in cases:
        checked = verify(signed.event)
        assert checked == signed
        assert checked.author == who.fingerprint
        assert checked.id == state.event_id(signed.event.payload)
        assert len(checked.id) == 16


def test_verify_rejects_a_bad_signature() -> None:
    event = op(ALICE, 2, 2, "post", text="hi").event
    for bit in (0, 100, 511):
        with pytest.raises(InvalidRoomEvent):
            verify(RoomEvent(event.payload, flip(event.sig, bit)))
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(event.payload, bytes(64)))


@FAST
@given(st.data())
def test_verify_rejects_any_flipped_payload_bit(draw: st.DataObject) -> None:
    event = GENUINE.event
    bit = draw.draw(st.integers(0, len(event.payload) * 8 - 1))
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(flip(event.payload, bit), event.sig))


def test_verify_rejects_forged_authorship() -> None:
    assert MALLORY.seed is not None
    # Mallory claims Alice's identity but signs with (and names) her own Ed25519 key.
    claim = RoomOp(ROOM, ALICE.public_key, MALLORY.verify_key, 2, 2, 0, "post", b"", "hi", b"")
    forged = state.sign(MALLORY.seed, claim)
    with pytest.raises(InvalidRoomEvent, match="not the author's"):
        verify(forged.event)


def test_verify_rejects_alices_key_signed_by_mallory() -> None:
    assert MALLORY.seed is not None
    claim = RoomOp(ROOM, ALICE.public_key, ALICE.verify_key, 2, 2, 0, "post", b"", "hi", b"")
    forged = state.sign(MALLORY.seed, claim)
    with pytest.raises(InvalidRoomEvent, match="bad signature"):
        verify(forged.event)


def test_verify_rejects_a_replayed_signature_on_another_payload() -> None:
    other = op(ALICE, 3, 3, "post", text="other")
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(other.event.payload, GENUINE.event.sig))


def test_verify_rejects_non_room_op_payloads() -> None:
    assert ALICE.seed is not None
    payload = codec.encode(Bye("bye"))
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(payload, signing.sign(ALICE.seed, payload)))
    inner = codec.encode(GENUINE.event)  # a RoomEvent inside a RoomEvent
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(inner, signing.sign(ALICE.seed, inner)))


GARBAGE = [
    b"",
    b"\xc1",
    b"\xff" * 40,
    msgpack.packb([1, 2, 3]),
    msgpack.packb({"t": "room-op"}),
    msgpack.packb({"t": "no-such-type"}),
    GENUINE.event.payload[:-1],
    GENUINE.event.payload + b"\0",
]


@pytest.mark.parametrize("payload", GARBAGE)
def test_verify_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(payload, GENUINE.event.sig))


@FAST
@given(st.binary(max_size=300))
def test_verify_rejects_random_bytes(payload: bytes) -> None:
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(payload, GENUINE.event.sig))


def test_verify_rejects_an_unknown_kind() -> None:
    assert ALICE.seed is not None
    fields = msgpack.unpackb(GENUINE.event.payload)
    fields["kind"] = "explode"
    payload = msgpack.packb(fields, use_bin_type=True)
    with pytest.raises(InvalidRoomEvent):
        verify(RoomEvent(payload, signing.sign(ALICE.seed, payload)))


MALFORMED = [
    ("invite", b"", "", b""),
    ("invite", bytes(16), "", b""),
    ("invite", bytes(31), "", b""),
    ("remove", b"", "", b""),
    ("admin", bytes(8), "", b""),
    ("post", bytes(32), "hi", b""),
    ("post", bytes(1), "hi", b""),
    ("join", bytes(32), "", b""),
    ("topic", bytes(32), "t", b""),
    ("create", b"", "lobby", b""),
    ("create", b"", "lobby", bytes(8)),
    ("create", bytes(32), "lobby", NONCE),
    ("post", b"", "hi", NONCE),
    ("post", b"", "hi", bytes(8)),
    ("leave", bytes(5), "", b""),
    ("invite", bytes(32), "", NONCE),
]


@pytest.mark.parametrize(("kind", "subject", "text", "nonce"), MALFORMED)
def test_verify_rejects_malformed_ops(kind: str, subject: bytes, text: str, nonce: bytes) -> None:
    signed = op(ALICE, 2, 2, kind, subject, text, nonce)
    with pytest.raises(InvalidRoomEvent, match="wrong"):
        verify(signed.event)


# --- replay rules -----------------------------------------------------------------------


def test_room_id_binds_author_and_nonce() -> None:
    assert len(ROOM) == 16
    assert room_id(ALICE.public_key, NONCE) == ROOM
    assert room_id(BOB.public_key, NONCE) != ROOM
    assert room_id(ALICE.public_key, bytes(16)) != ROOM


def test_create() -> None:
    s = replay(ROOM, [create()])
    assert s.creator == ALICE.fingerprint
    assert s.name == "lobby"
    assert s.topic == ""
    assert s.members == {ALICE.fingerprint: Member(ALICE.public_key, admin=True)}
    assert s.invited == {}
    assert s.rejected == {}
    assert s.lamport == 1


def test_create_must_match_the_room_id() -> None:
    wrong_nonce = op(ALICE, 1, 1, "create", text="x", nonce=bytes(16))
    someone_else = op(BOB, 1, 1, "create", text="x", nonce=NONCE)  # Alice's nonce, Bob's key
    s = replay(ROOM, [wrong_nonce, someone_else])
    assert s.creator is None
    assert s.members == {}
    assert s.accepted == []
    assert set(s.rejected) == {wrong_nonce.id, someone_else.id}
    # Bob's own room is fine, in that room.
    bobs = room_id(BOB.public_key, NONCE)
    own = op(BOB, 1, 1, "create", text="b", nonce=NONCE, room=bobs)
    assert replay(bobs, [own]).creator == BOB.fingerprint


def test_a_second_create_is_rejected() -> None:
    first, again = create(), create(lamport=5, seq=3, text="renamed")
    s = replay(ROOM, [again, first])
    assert verdicts(s, first, again) == [True, False]
    assert s.name == "lobby"
    assert s.members == {ALICE.fingerprint: Member(ALICE.public_key, admin=True)}


def test_events_before_the_create_are_rejected() -> None:
    early_post = op(ALICE, 1, 1, "post", text="too early")
    early_invite = op(ALICE, 2, 2, "invite", BOB.public_key)
    made = create(lamport=3, seq=3)
    join = op(BOB, 1, 4, "join")
    s = replay(ROOM, [join, made, early_invite, early_post])
    assert verdicts(s, early_post, early_invite, made, join) == [False, False, True, False]
    assert s.members.keys() == {ALICE.fingerprint}
    assert s.invited == {}


def test_another_rooms_events_are_rejected() -> None:
    other = room_id(ALICE.public_key, bytes(16))
    stray = op(ALICE, 2, 2, "post", text="elsewhere", room=other)
    s = replay(ROOM, [create(), stray])
    assert verdicts(s, stray) == [False]


def test_invite_and_join() -> None:
    invite = op(ALICE, 2, 2, "invite", BOB.public_key)
    s = replay(ROOM, [create(), invite])
    assert s.invited == {BOB.fingerprint: BOB.public_key}
    assert not s.is_member(BOB.fingerprint)
    join = op(BOB, 1, 3, "join")
    s = replay(ROOM, [create(), invite, join])
    assert s.invited == {}
    assert s.members[BOB.fingerprint] == Member(BOB.public_key, admin=False)
    assert verdicts(s, invite, join) == [True, True]


def test_invite_by_a_plain_member() -> None:
    ops = [
        create(),
        op(ALICE, 2, 2, "invite", BOB.public_key),
        op(BOB, 1, 3, "join"),
        invite := op(BOB, 2, 4, "invite", CAROL.public_key),
        join := op(CAROL, 1, 5, "join"),
    ]
    s = replay(ROOM, ops)
    assert verdicts(s, invite, join) == [True, True]
    assert s.members.keys() == {ALICE.fingerprint, BOB.fingerprint, CAROL.fingerprint}


def test_invite_refusals() -> None:
    by_stranger = op(MALLORY, 1, 2, "invite", DAVE.public_key)
    invite = op(ALICE, 2, 2, "invite", BOB.public_key)
    twice = op(ALICE, 3, 3, "invite", BOB.public_key)
    member = op(ALICE, 4, 4, "invite", ALICE.public_key)
    s = replay(ROOM, [create(), by_stranger, invite, twice, member])
    assert verdicts(s, by_stranger, invite, twice, member) == [False, True, False, False]
    assert s.invited == {BOB.fingerprint: BOB.public_key}


def test_join_without_invite_is_rejected() -> None:
    join = op(MALLORY, 1, 2, "join")
    s = replay(ROOM, [create(), join])
    assert verdicts(s, join) == [False]
    assert not s.is_member(MALLORY.fingerprint)
    # A join before the invitation does not count either, even once it comes.
    early = op(BOB, 1, 2, "join")
    invite = op(ALICE, 2, 3, "invite", BOB.public_key)
    s = replay(ROOM, [create(), early, invite])
    assert verdicts(s, early, invite) == [False, True]
    assert s.invited == {BOB.fingerprint: BOB.public_key}


def test_a_member_cannot_join_twice() -> None:
    ops = [create(), op(ALICE, 2, 2, "invite", BOB.public_key), op(BOB, 1, 3, "join")]
    again = op(BOB, 2, 4, "join")
    own = op(ALICE, 3, 4, "join")
    s = replay(ROOM, [*ops, again, own])
    assert verdicts(s, again, own) == [False, False]


def test_posts() -> None:
    invite = op(ALICE, 2, 2, "invite", BOB.public_key)
    invited_post = op(BOB, 1, 3, "post", text="not yet")
    join = op(BOB, 2, 4, "join")
    post = op(BOB, 3, 5, "post", text="hi")
    stranger = op(MALLORY, 1, 5, "post", text="spam")
    mine = op(ALICE, 3, 6, "post", text="welcome")
    s = replay(ROOM, [create(), invite, invited_post, join, post, stranger, mine])
    assert verdicts(s, invited_post, post, stranger, mine) == [False, True, False, True]
    assert [p.op.text for p in s.posts()] == ["hi", "welcome"]
    assert s.lamport == 6


def test_leave() -> None:
    base = [create(), op(ALICE, 2, 2, "invite", BOB.public_key), op(BOB, 1, 3, "join")]
    before = op(BOB, 2, 4, "post", text="bye all")
    leave = op(BOB, 3, 5, "leave")
    after = op(BOB, 4, 6, "post", text="still here?")
    stranger = op(MALLORY, 1, 5, "leave")
    s = replay(ROOM, [*base, before, leave, after, stranger])
    assert verdicts(s, before, leave, after, stranger) == [True, True, False, False]
    assert s.members.keys() == {ALICE.fingerprint}
    again = op(BOB, 5, 7, "leave")
    assert verdicts(replay(ROOM, [*base, leave, again]), again) == [False]


def _room_with_bob_and_carol() -> list[Op]:
    return [
        create(),
        op(ALICE, 2, 2, "invite", BOB.public_key),
        op(ALICE, 3, 3, "invite", CAROL.public_key),
        op(BOB, 1, 4, "join"),
        op(CAROL, 1, 4, "join"),
    ]


def test_remove_needs_an_admin() -> None:
    by_member = op(BOB, 2, 5, "remove", CAROL.public_key)
    by_stranger = op(MALLORY, 1, 5, "remove", CAROL.public_key)
    s = replay(ROOM, [*_room_with_bob_and_carol(), by_member, by_stranger])
    assert verdicts(s, by_member, by_stranger) == [False, False]
    assert s.is_member(CAROL.fingerprint)


def test_remove_a_member_and_an_invitee() -> None:
    invite = op(ALICE, 4, 5, "invite", DAVE.public_key)
    drop_carol = op(ALICE, 5, 6, "remove", CAROL.public_key)
    drop_dave = op(ALICE, 6, 7, "remove", DAVE.public_key)
    dave_joins = op(DAVE, 1, 8, "join")
    carol_posts = op(CAROL, 2, 8, "post", text="?")
    nobody = op(ALICE, 7, 9, "remove", MALLORY.public_key)
    again = op(ALICE, 8, 10, "remove", CAROL.public_key)
    ops = [*_room_with_bob_and_carol(), invite, drop_carol, drop_dave, dave_joins, carol_posts]
    s = replay(ROOM, [*ops, nobody, again])
    assert verdicts(s, drop_carol, drop_dave, dave_joins, carol_posts, nobody, again) == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert s.members.keys() == {ALICE.fingerprint, BOB.fingerprint}
    assert s.invited == {}


def test_the_creator_cannot_be_removed() -> None:
    grant = op(ALICE, 4, 5, "admin", BOB.public_key)
    coup = op(BOB, 2, 6, "remove", ALICE.public_key)
    self_removal = op(ALICE, 5, 6, "remove", ALICE.public_key)
    s = replay(ROOM, [*_room_with_bob_and_carol(), grant, coup, self_removal])
    assert verdicts(s, grant, coup, self_removal) == [True, False, False]
    assert s.members[ALICE.fingerprint] == Member(ALICE.public_key, admin=True)


def test_admin_grants() -> None:
    before = op(BOB, 2, 5, "remove", CAROL.public_key)  # not yet an admin
    grant = op(ALICE, 4, 6, "admin", BOB.public_key)
    by_member = op(CAROL, 2, 7, "admin", CAROL.public_key)
    after = op(BOB, 3, 8, "remove", CAROL.public_key)
    s = replay(ROOM, [*_room_with_bob_and_carol(), before, grant, by_member, after])
    assert verdicts(s, before, grant, by_member, after) == [False, True, False, True]
    assert s.members == {
        ALICE.fingerprint: Member(ALICE.public_key, admin=True),
        BOB.fingerprint: Member(BOB.public_key, admin=True),
    }


def test_admin_only_for_members() -> None:
    invite = op(ALICE, 2, 2, "invite", BOB.public_key)
    to_invitee = op(ALICE, 3, 3, "admin", BOB.public_key)
    to_stranger = op(ALICE, 4, 4, "admin", MALLORY.public_key)
    s = replay(ROOM, [create(), invite, to_invitee, to_stranger])
    assert verdicts(s, to_invitee, to_stranger) == [False, False]
    join = op(BOB, 1, 5, "join")
    assert replay(ROOM, [create(), invite, to_invitee, join]).members[BOB.fingerprint] == Member(
        BOB.public_key, admin=False
    )


def test_a_removed_admin_rejoins_without_admin() -> None:
    ops = [
        *_room_with_bob_and_carol(),
        op(ALICE, 4, 5, "admin", BOB.public_key),
        op(ALICE, 5, 6, "remove", BOB.public_key),
        op(ALICE, 6, 7, "invite", BOB.public_key),
        op(BOB, 2, 8, "join"),
    ]
    lost = op(BOB, 3, 9, "remove", CAROL.public_key)
    s = replay(ROOM, [*ops, lost])
    assert s.members[BOB.fingerprint] == Member(BOB.public_key, admin=False)
    assert verdicts(s, lost) == [False]


def test_topic() -> None:
    first = op(ALICE, 2, 2, "topic", text="first")
    stranger = op(MALLORY, 1, 3, "topic", text="spam")
    invite = op(ALICE, 3, 3, "invite", BOB.public_key)
    join = op(BOB, 1, 4, "join")
    bobs = op(BOB, 2, 5, "topic", text="bob's")
    s = replay(ROOM, [bobs, join, invite, stranger, first, create()])
    assert verdicts(s, first, stranger, bobs) == [True, False, True]
    assert s.topic == "bob's"
    assert s.name == "lobby"


def test_max_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "MAX_MEMBERS", 3)
    invite_bob = op(ALICE, 2, 2, "invite", BOB.public_key)
    invite_carol = op(ALICE, 3, 3, "invite", CAROL.public_key)
    bob_joins = op(BOB, 1, 4, "join")
    full = op(ALICE, 4, 5, "invite", DAVE.public_key)
    drop_carol = op(ALICE, 5, 6, "remove", CAROL.public_key)
    room_again = op(ALICE, 6, 7, "invite", DAVE.public_key)
    full_again = op(BOB, 2, 8, "invite", MALLORY.public_key)
    ops = [create(), invite_bob, invite_carol, bob_joins, full, drop_carol, room_again, full_again]
    s = replay(ROOM, ops)
    assert verdicts(s, invite_bob, invite_carol, bob_joins, full, drop_carol, room_again) == [
        True
    ] * 3 + [False, True, True]
    assert s.rejected[full.id] == "the room is full"
    assert verdicts(s, full_again) == [False]
    assert len(s.members) + len(s.invited) == 3


# --- convergence ------------------------------------------------------------------------

A, B, C, D, M = ALICE, BOB, CAROL, DAVE, MALLORY
C_EARLY = op(C, 3, 7, "post", text="carol before removal")
C_SAME = op(C, 4, 8, "post", text="carol at the removal's time")
C_LATE = op(C, 5, 9, "post", text="carol after removal")
REMOVE_C = op(A, 6, 8, "remove", C.public_key)
D_SAME = op(D, 4, 11, "post", text="dave at his removal's time")
REMOVE_D = op(B, 5, 11, "remove", D.public_key)
D_LATE = op(D, 5, 12, "post", text="dave after removal")
COUP = op(B, 4, 10, "remove", A.public_key)
B_LEFT = op(B, 7, 14, "post", text="bob after leaving")
B_TOPIC = op(B, 3, 9, "topic", text="bob's topic")
D_TOPIC = op(D, 2, 9, "topic", text="dave's topic")
MIX = [
    create(),
    op(A, 2, 2, "invite", B.public_key),
    op(A, 3, 3, "invite", C.public_key),
    op(M, 1, 3, "join"),  # never invited
    op(B, 1, 4, "join"),
    op(C, 1, 4, "join"),
    op(A, 4, 5, "invite", D.public_key),
    op(M, 2, 5, "post", text="spam"),
    op(A, 5, 6, "admin", B.public_key),
    op(B, 2, 6, "post", text="hi"),
    op(C, 2, 5, "topic", text="carol's topic"),
    op(D, 1, 7, "join"),
    C_EARLY,
    REMOVE_C,
    C_SAME,
    C_LATE,
    B_TOPIC,
    D_TOPIC,
    COUP,
    op(D, 3, 10, "post", text="dave"),
    REMOVE_D,
    D_SAME,
    D_LATE,
    op(A, 7, 12, "post", text="alice"),
    op(B, 6, 13, "leave"),
    B_LEFT,
    op(A, 8, 14, "invite", C.public_key),
    op(C, 6, 15, "join"),
    op(C, 7, 16, "post", text="carol is back"),
]


def summary(s: state.RoomState) -> tuple[object, ...]:
    return (
        s.creator,
        {fp: (m.key, m.admin) for fp, m in s.members.items()},
        dict(s.invited),
        s.name,
        s.topic,
        [o.id for o in s.accepted],
        dict(s.rejected),
        s.lamport,
    )


BASELINE = replay(ROOM, MIX)


def test_the_mixed_room_replays_as_expected() -> None:
    s = BASELINE
    assert len({o.id for o in MIX}) == len(MIX)
    assert s.members == {
        A.fingerprint: Member(A.public_key, admin=True),
        C.fingerprint: Member(C.public_key, admin=False),
    }
    assert s.invited == {}
    assert s.name == "lobby"
    # Bob's and Dave's topics are concurrent (Lamport 9): the total order decides.
    assert s.topic == max(B_TOPIC, D_TOPIC, key=lambda o: o.order).op.text
    assert verdicts(s, C_EARLY, C_LATE, COUP, D_LATE, B_LEFT) == [True, False, False, False, False]
    # Same Lamport time as the removal: the total order decides, the same everywhere.
    assert verdicts(s, C_SAME) == [C_SAME.order < REMOVE_C.order]
    assert verdicts(s, D_SAME) == [D_SAME.order < REMOVE_D.order]
    assert len(s.accepted) + len(s.rejected) == len(MIX)
    assert s.lamport == 16
    assert [p.op.text for p in s.posts()][-1] == "carol is back"


def test_accepted_is_in_total_order() -> None:
    orders = [o.order for o in BASELINE.accepted]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders)  # a total order: no ties between distinct events
    assert len({o.order for o in MIX}) == len(MIX)
    # The order relies on an author never reusing a Lamport time; MIX keeps to that.
    assert len({(o.author, o.op.lamport) for o in MIX}) == len(MIX)
    lamports = [o.op.lamport for o in BASELINE.accepted]
    assert lamports == sorted(lamports)
    # Each author's accepted events keep their own sequence.
    for who in (A, B, C, D):
        seqs = [o.op.seq for o in BASELINE.accepted if o.author == who.fingerprint]
        assert seqs == sorted(seqs)


@FAST
@given(st.permutations(MIX))
def test_replay_converges_over_any_arrival_order(ops: list[Op]) -> None:
    s = replay(ROOM, ops)
    assert summary(s) == summary(BASELINE)
    assert s.members == BASELINE.members


@FAST
@given(st.permutations(MIX), st.integers(0, len(MIX)))
def test_a_subset_then_the_rest_converges(ops: list[Op], cut: int) -> None:
    # A member who had only some events first replays again once it holds them all.
    replay(ROOM, ops[:cut])
    assert summary(replay(ROOM, ops[cut:] + ops[:cut])) == summary(BASELINE)


@FAST
@given(st.permutations([C_LATE, C_EARLY, REMOVE_C, *MIX[:12]]))
def test_a_removed_members_later_posts_are_rejected(ops: list[Op]) -> None:
    s = replay(ROOM, ops)
    assert verdicts(s, C_EARLY, REMOVE_C, C_LATE) == [True, True, False]
    assert not s.is_member(C.fingerprint)
    assert C_EARLY in s.posts()


def test_equivocation_converges() -> None:
    # An author who signs two different events with the same (Lamport time, seq) — a
    # malicious member, or one whose counters were rolled back by a restored backup — must
    # not make members who hold the same two events disagree.
    x = op(A, 2, 2, "topic", text="x")
    y = op(A, 2, 2, "topic", text="y")
    px = op(A, 3, 3, "post", text="p")
    py = op(A, 3, 3, "post", text="q")
    one = replay(ROOM, [create(), x, y, px, py])
    other = replay(ROOM, [create(), y, x, py, px])
    assert summary(one) == summary(other)
