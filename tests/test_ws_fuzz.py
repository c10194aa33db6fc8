"""Random and malformed WebSocket frames: the hall answers `error` (or a bid
answer) to each, never dies, and the socket stays usable."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from conftest import Socket

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
ops = st.sampled_from(["join", "leave", "bid", "ping", "", "JOIN", None, 7, "bid "])
messages = st.one_of(
    st.fixed_dictionaries({"op": ops}, optional={
        "lot_id": json_values, "amount": json_values, "ref": json_values,
        "since_seq": json_values, "max_amount": json_values}).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)


async def test_fuzzed_frames_get_answers_and_the_socket_survives(stack, hall):
    api, _ = await hall.bidder(balance=0)
    sock = await Socket.connect(stack.ws_url, api.token)
    sent = []

    @hsettings(max_examples=300, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(msg=messages)
    def collect(msg):
        sent.append(msg)

    collect()
    for msg in sent:
        await sock.ws.send(msg)
    # One answer per frame at least for the ones that are clearly not ops; then
    # the socket still answers a ping, and nothing ever said "internal".
    await sock.send({"op": "ping"})
    await sock.wait_for(lambda m: m.get("type") == "pong", start=0, timeout=60)
    assert not [m for m in sock.messages if m.get("code") == "internal"]
    kinds = {m.get("type") for m in sock.messages}
    assert kinds <= {"error", "pong", "snapshot", "rejected", "accepted"}, kinds
    assert "error" in kinds
    code, body = await hall.anon.call("GET", "/healthz")
    assert code == 200 and body["status"] == "ok"
    await sock.close()
