"""The bid script against a plain-Python model of the auction rules.

Hypothesis plays random sequences of plain bids, proxy bids and maximum
raises by a few bidders on a lot with a fixed increment or a ladder (and
sometimes a hidden reserve, sometimes pre-emption holders), runs each through
the real Lua script in the real Redis, and checks that the answer, the bid
events, the price and the leader are what the rules say.
"""
from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from auction import engine, keys, snapshot

_lot_ids = itertools.count(2_000_000_000)


def inc_at(increment, price: int) -> int:
    """The increment in force at `price`, worked out from the contract's words
    alone (not the engine's code): a ladder [[below, step], ...] cuts the
    prices into bands [0, b1), [b1, b2), ... [b_last, infinity), each with its
    step; the last step also covers everything above the last bound."""
    if isinstance(increment, int):
        return increment
    bands, low = [], 0
    for below, step in increment:
        high = float("inf") if below is None else below
        bands.append((low, high, step))
        low = high
    bands.append((low, float("inf"), increment[-1][1]))
    (step,) = [step for low, high, step in bands if low <= price < high]
    return step


@dataclass
class Model:
    """The rules as API.md states them, kept as every bidder's standing maximum."""
    start: int
    increment: object
    reserve: int = 0
    price: int = 0
    leader: int | None = None
    maxima: dict = field(default_factory=dict)  # uid -> (maximum, time it was set)
    clock: itertools.count = field(default_factory=itertools.count)
    # Pre-emption (优先购买权): uid -> rank. At equal maxima a holder comes
    # before anyone who is not, a lower rank before a higher; only then time.
    holders: dict = field(default_factory=dict)

    def rank(self, uid: int | None) -> float:
        return self.holders.get(uid, float("inf"))

    def outranks(self, a: int, b: int | None) -> bool:
        """Does `a` win a tie at equal price against `b`?"""
        return b is not None and self.rank(a) < self.rank(b)

    def step_over(self, amount: int, challenger: int, holder_of_amount: int | None) -> int:
        """The least price at which `challenger` beats `amount` held by another."""
        if self.outranks(challenger, holder_of_amount):
            return amount
        return amount + inc_at(self.increment, amount)

    def leader_max(self) -> int:
        return self.maxima[self.leader][0] if self.leader is not None else 0

    def reserve_up(self, price: int, cap: int) -> int:
        return self.reserve if self.reserve and price < self.reserve <= cap else price

    def bid(self, uid: int, amount: int | None, max_amount: int | None):
        """-> (code or None, [(uid, amount) bid events])."""
        if uid == self.leader:
            if max_amount is not None and max_amount > self.leader_max():
                self.maxima[uid] = (max_amount, self.maxima[uid][1])  # keeps its priority
                return None, []
            return "already_leading", []
        base = self.price or self.start
        # A holder who outranks the leader may bid the current price itself.
        minimum = self.start if not self.price else self.step_over(self.price, uid, self.leader)
        amount = minimum if amount is None else amount
        if amount < minimum:
            return "too_low", []
        if (amount - base) % inc_at(self.increment, base):
            return "invalid", []
        if max_amount is not None and max_amount < amount:
            return "invalid", []
        mine = max_amount if max_amount is not None else amount
        self.maxima[uid] = (mine, next(self.clock))
        # Highest maximum leads; between equal maxima the holder, the lower
        # rank, then the earlier one.
        ranked = sorted(self.maxima.items(),
                        key=lambda kv: (-kv[1][0], self.rank(kv[0]), kv[1][1]))
        top_uid, (top_max, _) = ranked[0]
        old_leader, old_max = self.leader, self.leader_max()
        events = []
        if top_uid == uid:
            if old_leader is not None and old_max > self.price:
                events.append((old_leader, old_max))
            price = amount if old_leader is None else max(
                amount, min(mine, self.step_over(old_max, uid, old_leader)))
            price = self.reserve_up(price, mine)
        else:
            events.append((uid, mine))
            price = self.reserve_up(min(top_max, self.step_over(mine, top_uid, uid)), top_max)
        events.append((top_uid, price))
        self.leader, self.price = top_uid, price
        return None, events


actions = st.lists(
    st.tuples(
        st.integers(1, 4),                     # bidder
        # amount: the minimum, a few increments up, left out, or the current price
        st.sampled_from(["min", "jump", "none", "same"]),
        st.integers(0, 5),                     # increments above the minimum for "jump"
        st.one_of(st.none(), st.integers(0, 4000)),  # extra above amount for a proxy maximum
    ),
    min_size=1, max_size=14)
ladders = st.sampled_from([100, 250, [[2000, 100], [5000, 250], [None, 1000]]])


@pytest.fixture(scope="module")
def scripts(stack):
    r = stack.sync_redis()
    return r, r.register_script(engine.BID_LUA), r.register_script(engine.LOAD_LUA), \
        r.register_script(engine.STATUS_LUA)


@hsettings(max_examples=120, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(increment=ladders, actions=actions, start=st.sampled_from([1000, 1500]),
       reserve=st.sampled_from([0, 0, 2600, 4100]),
       holders=st.one_of(st.just({}), st.dictionaries(st.integers(1, 4), st.integers(1, 3),
                                                      max_size=3)))
def test_engine_matches_the_rules(scripts, increment, actions, start, reserve, holders):
    r, bid, load, status = scripts
    lot_id = next(_lot_ids)
    session_id = lot_id
    deadline = (int(r.time()[0]) + 3600) * 1000
    load(keys=engine.load_keys(lot_id), args=[
        "scheduled", session_id, start, json.dumps(increment), reserve, deadline, 0, 0,
        "{}", 0, 0, "", "", 0, json.dumps(sorted(holders.items()))])
    assert json.loads(status(keys=engine.control_keys(lot_id), args=[lot_id, "open", 1000]))["status"] == "live"
    r.sadd(keys.session_deposits(session_id), 1, 2, 3, 4)
    model = Model(start, increment, reserve, holders=dict(holders))
    seq = 0
    for uid, kind, k, extra in actions:
        minimum = model.start if not model.price else model.price + inc_at(increment, model.price)
        if kind == "none" and extra is None:
            extra = 0  # a bid without an amount must carry a maximum
        if kind == "same":
            amount = model.price or minimum  # only a holder who outranks the leader may
        else:
            amount = None if kind == "none" else minimum + (
                k * inc_at(increment, model.price or start) if kind == "jump" else 0)
        max_amount = None if extra is None else (amount or minimum) + extra
        want_code, want_events = model.bid(uid, amount, max_amount)
        ref = uuid.uuid4().hex
        got = json.loads(bid(keys=engine.bid_keys(lot_id, session_id, uid, ref),
                             args=[lot_id, uid, f"u{uid}", "" if amount is None else amount,
                                   ref, 60, 1000, "" if max_amount is None else max_amount]))
        assert got.get("code") == want_code, (got, model)
        entries = r.xrange(keys.lot_stream(lot_id), f"{seq + 1}-0", "+")
        events = [json.loads(e[1]["d"]) for e in entries if e[1]["d"].startswith('{"') and
                  json.loads(e[1]["d"])["type"] == "bid"]
        assert [(int(e[1]["u"]), json.loads(e[1]["d"])["amount"]) for e in entries
                if json.loads(e[1]["d"])["type"] == "bid"] == want_events
        assert [e["seq"] for e in events] == list(range(seq + 1, seq + 1 + len(want_events)))
        seq += len(want_events)
        state = r.hgetall(keys.lot(lot_id))
        assert int(state["price"] or 0) == model.price
        assert (state["leader"] or None) == (str(model.leader) if model.leader else None)
        assert int(state["seq"]) == seq
        if want_code is None and want_events:
            assert got["price"] == model.price and got["leading"] == (model.leader == uid)
        # Invariants a bidder can see: prices never fall; the snapshot's minimum
        # next bid follows the increment in force.
        snap = snapshot.from_state(lot_id, state, 0)
        assert snap["next_min_bid"] == (model.price + inc_at(increment, model.price)
                                        if model.price else start)
        assert snap["reserve_met"] == (model.price >= reserve if reserve else True)
        assert snap["preemption"] is bool(holders)  # that there are holders, never who
        assert str(snap).count("rank") == 0
    amounts = [json.loads(e[1]["d"])["amount"] for e in r.xrange(keys.lot_stream(lot_id))
               if json.loads(e[1]["d"])["type"] == "bid"]
    assert amounts == sorted(amounts)


def test_ladder_next_minimum_follows_the_band(scripts):
    """Below 2,000 the step is 100, then 250, then 1,000 above 5,000."""
    ladder = [[2000, 100], [5000, 250], [None, 1000]]
    assert [inc_at(ladder, p) for p in (0, 1999, 2000, 4999, 5000, 10**9)] == \
        [100, 100, 250, 250, 1000, 1000]
    assert [snapshot.increment_at(ladder, p) for p in (0, 1999, 2000, 4999, 5000, 10**9)] == \
        [100, 100, 250, 250, 1000, 1000]


@given(st.lists(st.lists(st.one_of(st.text(max_size=80), st.integers(-2**63, 2**63 - 1)),
                         max_size=24), min_size=1, max_size=8))
def test_the_bid_batch_is_packed_exactly_as_redis_py_would(calls):
    """The hall packs its EVALSHA batch itself (hall/bidding.py): byte for byte
    what redis-py's own packer sends, for any text (any script) and integer."""
    from redis.asyncio.connection import Connection
    from hall.bidding import pack_evalsha
    sha = "0123456789abcdef0123456789abcdef01234567"
    theirs = b"".join(Connection().pack_commands([("EVALSHA", sha, *argv) for argv in calls]))
    assert pack_evalsha(sha, [tuple(argv) for argv in calls]) == theirs


@given(st.text(min_size=1, max_size=64), st.one_of(st.none(), st.integers(1, 2**53)),
       st.one_of(st.none(), st.integers(1, 2**53)), st.text(max_size=20),
       st.integers(1, 2**31), st.integers(1, 2**31), st.integers(0, 1000))
def test_a_bid_from_its_template_is_the_call_engine_would_pack(ref, amount, max_amount, name,
                                                                lot_id, user_id, rate):
    """The hall packs each bid from a per-bidder template (hall/bidding.py
    BidCommands): byte for byte the EVALSHA of auction/engine.py's keys and
    arguments, for any ref, name and amount, the second bid on a template too."""
    from hall.auth import Identity
    from hall.bidding import BidCommands, pack_evalsha
    sha = "0123456789abcdef0123456789abcdef01234567"
    user = Identity(id=user_id, name=name, role="bidder")
    commands = BidCommands()
    for r in ("warm-up", ref):
        keys = engine.bid_keys(lot_id, 7, user_id, r)
        args = engine.bid_args(lot_id, user_id, name, amount, r, max_amount, rate, "bref", "kid1")
        expected = pack_evalsha(sha, [(len(keys), *keys, *args)])
        assert commands.pack(sha, lot_id, 7, user, amount, r, max_amount, rate, "bref",
                             "kid1") == expected
        assert commands.pack(sha.encode(), lot_id, 7, user, amount, r, max_amount, rate, "bref",
                             "kid1") == expected
