"""Modbus TCP without pymodbus (drivers.modbus.mbap) through the endpoint's link, against a
scripted device over a real socket: what a real device can do wrong on the wire (answer late, send
garbage, answer for another unit, hang up) is mapped into the error tree as the pymodbus path
maps it, and a late reply is never taken for the next request's."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from core.errors import DriverTimeout, NotConnected, ProtocolError
from drivers.modbus import mbap
from drivers.modbus.codec import bits_of
from drivers.modbus.config import ModbusTcp
from drivers.modbus.link import ExceptionReply, ModbusLink

Reply = Callable[[int, int, bytes, asyncio.StreamWriter], Awaitable[None]]
"""(transaction id, unit, request PDU, writer): what the scripted device does."""


def frame(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1, unit) + pdu


def registers_pdu(function: int, words: list[int]) -> bytes:
    return struct.pack(f">BB{len(words)}H", function, 2 * len(words), *words)


class Device:
    """A Modbus TCP device whose answer to each request a test scripts."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[tuple[int, int, bytes]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                tid, _protocol, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)
                self.requests.append((tid, unit, pdu))
                answer = self.script.pop(0)
                asyncio.get_running_loop().create_task(answer(tid, unit, pdu, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer_registers(words: list[int], delay_s: float = 0.0) -> Reply:
    async def reply(tid: int, unit: int, pdu: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay_s)
        writer.write(frame(tid, unit, registers_pdu(pdu[0], words)))

    return reply


def answer_raw(data: Callable[[int, int, bytes], bytes]) -> Reply:
    async def reply(tid: int, unit: int, pdu: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(data(tid, unit, pdu))

    return reply


async def hang_up(_tid: int, _unit: int, _pdu: bytes, writer: asyncio.StreamWriter) -> None:
    writer.close()


@pytest.fixture
async def device() -> AsyncIterator[Device]:
    device = Device()
    await device.start()
    yield device
    await device.stop()


@pytest.fixture
async def link(device: Device) -> AsyncIterator[ModbusLink]:
    link = ModbusLink(ModbusTcp(kind="tcp", host="127.0.0.1", port=device.port))
    await link.connect(2.0, "dev")
    yield link
    link.close()


async def test_registers_come_as_sent(device: Device, link: ModbusLink) -> None:
    device.script.append(answer_registers([0x4148, 0x0000, 0xFFFF]))
    data = await link.read_registers(3, 100, 3, 7, 1.0, "dev")
    assert data == bytes.fromhex("41480000ffff")
    (tid, unit, pdu) = device.requests[0]
    assert unit == 7 and pdu == bytes.fromhex("03 0064 0003")
    device.script.append(answer_registers([1, 2]))
    assert await link.read(4, 0, 2, 7, 1.0, "dev") == [1, 2]
    assert device.requests[1][0] == (tid + 1) & 0xFFFF  # a new transaction id per request


async def test_a_late_reply_is_dropped_not_taken_for_the_next_one(
    device: Device, link: ModbusLink
) -> None:
    device.script.append(answer_registers([111], delay_s=0.3))  # after the request timed out
    device.script.append(answer_registers([222], delay_s=0.35))  # after the late one came
    with pytest.raises(DriverTimeout, match=r"no reply within 0\.1 s"):
        await link.read_registers(3, 0, 1, 1, 0.1, "dev")
    assert await link.read_registers(3, 0, 1, 1, 2.0, "dev") == struct.pack(">H", 222)


async def test_exception_response_is_an_exception_reply(device: Device, link: ModbusLink) -> None:
    device.script.append(answer_raw(lambda tid, unit, pdu: frame(tid, unit, bytes((0x83, 2)))))
    with pytest.raises(ExceptionReply) as reply:
        await link.read_registers(3, 0, 1, 1, 1.0, "dev")
    assert reply.value.code == 2 and reply.value.name == "ILLEGAL DATA ADDRESS"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda tid, unit, pdu: b"\x15\x00?!garbage!", "unusable reply: 15 00 3f 21"),
        (lambda tid, unit, pdu: frame(tid, unit + 1, registers_pdu(3, [1])), "unusable reply"),
        (lambda tid, unit, pdu: frame(tid, unit, registers_pdu(3, [1, 2])), "2 registers"),
        (lambda tid, unit, pdu: frame(tid, unit, bytes((3, 4, 0, 1))), "byte count"),
        (lambda tid, unit, pdu: frame(tid, unit, bytes((4, 2, 0, 1))), "function 4"),
    ],
    ids=["not a frame", "another unit", "wrong count", "truncated", "another function"],
)
async def test_unusable_replies_are_protocol_errors_at_once(
    device: Device, link: ModbusLink, reply: Callable[[int, int, bytes], bytes], reason: str
) -> None:
    device.script.append(answer_raw(reply))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProtocolError, match=reason):
        await link.read_registers(3, 0, 1, 1, 5.0, "dev")
    assert loop.time() - started < 2.0  # not after the request's timeout
    device.script.append(answer_registers([7]))
    assert await link.read_registers(3, 0, 1, 1, 1.0, "dev") == struct.pack(">H", 7)


async def test_a_few_garbage_bytes_are_shown_when_the_request_times_out(
    device: Device, link: ModbusLink
) -> None:
    device.script.append(answer_raw(lambda tid, unit, pdu: b"\x01\x02\x03"))
    with pytest.raises(ProtocolError, match="unusable reply: 01 02 03"):
        await link.read_registers(3, 0, 1, 1, 0.2, "dev")


async def test_a_device_that_hangs_up_is_not_connected(device: Device, link: ModbusLink) -> None:
    device.script.append(hang_up)
    with pytest.raises(NotConnected):
        await link.read_registers(3, 0, 1, 1, 2.0, "dev")
    assert not link.connected
    with pytest.raises(NotConnected, match="not connected"):
        await link.read_registers(3, 0, 1, 1, 2.0, "dev")
    await link.connect(2.0, "dev")  # the next connect opens a new connection
    device.script.append(answer_registers([5]))
    assert await link.read_registers(3, 0, 1, 1, 2.0, "dev") == struct.pack(">H", 5)


async def test_a_cancelled_request_leaves_the_link_usable(device: Device, link: ModbusLink) -> None:
    device.script.append(answer_registers([1], delay_s=0.2))
    device.script.append(answer_registers([2]))
    task = asyncio.create_task(link.read_registers(3, 0, 1, 1, 5.0, "dev"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # the cancelled request's reply comes, and is dropped
    assert await link.read_registers(3, 0, 1, 1, 1.0, "dev") == struct.pack(">H", 2)


def test_pdus_of_every_function_spoken() -> None:
    assert mbap.read_request(1, 10, 3) == bytes.fromhex("01 000a 0003")
    assert mbap.write_request(5, 3, [True]) == bytes.fromhex("05 0003 ff00")
    assert mbap.write_request(6, 3, [0xABCD]) == bytes.fromhex("06 0003 abcd")
    assert mbap.write_request(15, 3, [True, False, True] + [False] * 6 + [True]) == (
        bytes.fromhex("0f 0003 000a 02 05 02")
    )
    assert mbap.write_request(16, 3, [1, 2]) == bytes.fromhex("10 0003 0002 04 0001 0002")
    assert mbap.identification_request(4, 0x80) == bytes.fromhex("2b 0e 04 80")
    assert bits_of(bytes((0b00000101, 0b1)), 10) == [True, False, True] + [False] * 5 + [
        True,
        False,
    ]
    echo = mbap.parse_response(16, bytes.fromhex("10 0003 0002"))
    assert (echo.address, echo.value) == (3, 2)
    identity = mbap.parse_response(
        0x2B, bytes.fromhex("2b 0e 01 83 00 00 02 00 03") + b"etl" + bytes((1, 1)) + b"Z"
    )
    assert identity.objects == {0: b"etl", 1: b"Z"}
    with pytest.raises(mbap.ResponseError, match="overrun"):
        mbap.parse_response(0x2B, bytes.fromhex("2b 0e 01 83 00 00 01 00 09") + b"etl")
    with pytest.raises(mbap.ResponseError, match="5 expected"):
        mbap.parse_response(6, bytes.fromhex("06 0003"))


async def windowed_link(device: Device, window: int) -> ModbusLink:
    transport = ModbusTcp(kind="tcp", host="127.0.0.1", port=device.port, max_transactions=window)
    link = ModbusLink(transport)
    await link.connect(2.0, "dev")
    return link


async def test_a_window_sends_requests_before_replies_and_matches_them_by_id(
    device: Device,
) -> None:
    link = await windowed_link(device, 3)
    try:
        # Answered in the reverse order of the requests: each reply still reaches its request.
        for word, delay in ((1, 0.3), (2, 0.2), (3, 0.1), (4, 0.0)):
            device.script.append(answer_registers([word], delay_s=delay))
        reads = [
            asyncio.create_task(link.read_registers(3, 0, 1, unit, 2.0, "dev"))
            for unit in (1, 2, 3, 4)
        ]
        await asyncio.sleep(0.05)
        assert len(device.requests) == 3  # the fourth waits for room in the window
        assert [await r for r in reads] == [struct.pack(">H", w) for w in (1, 2, 3, 4)]
        assert [unit for _tid, unit, _pdu in device.requests] == [1, 2, 3, 4]
    finally:
        link.close()


async def test_in_a_window_a_timed_out_request_leaves_the_others_theirs(device: Device) -> None:
    link = await windowed_link(device, 2)
    try:
        device.script.append(answer_registers([111], delay_s=0.4))  # after its timeout
        device.script.append(answer_registers([222], delay_s=0.05))
        late = asyncio.create_task(link.read_registers(3, 0, 1, 1, 0.2, "dev"))
        prompt = asyncio.create_task(link.read_registers(3, 0, 1, 2, 2.0, "dev"))
        assert await prompt == struct.pack(">H", 222)
        with pytest.raises(DriverTimeout):
            await late
        device.script.append(answer_registers([333], delay_s=0.3))  # after the late reply
        assert await link.read_registers(3, 0, 1, 1, 2.0, "dev") == struct.pack(">H", 333)
    finally:
        link.close()


async def test_garbage_in_a_window_fails_every_pending_request(device: Device) -> None:
    link = await windowed_link(device, 2)
    try:
        device.script.append(answer_raw(lambda tid, unit, pdu: b"\x15\x00?!garbage!"))
        device.script.append(answer_registers([2], delay_s=0.3))
        reads = [
            asyncio.create_task(link.read_registers(3, 0, 1, unit, 5.0, "dev")) for unit in (1, 2)
        ]
        for read in reads:
            with pytest.raises(ProtocolError, match="unusable reply"):
                await read
        assert link.connected
        await asyncio.sleep(0.35)  # the second reply comes, to no request: dropped
        device.script.append(answer_registers([3]))
        assert await link.read_registers(3, 0, 1, 1, 2.0, "dev") == struct.pack(">H", 3)
    finally:
        link.close()


def test_max_transactions_is_bounded() -> None:
    with pytest.raises(ValueError, match="max_transactions"):
        ModbusTcp(kind="tcp", host="127.0.0.1", max_transactions=0)
    with pytest.raises(ValueError, match="max_transactions"):
        ModbusTcp(kind="tcp", host="127.0.0.1", max_transactions=65)


async def test_a_shorter_timeout_after_a_longer_one_still_expires_on_time(device: Device) -> None:
    link = await windowed_link(device, 2)
    try:
        device.script.append(answer_registers([1], delay_s=0.6))
        device.script.append(answer_registers([2], delay_s=0.6))  # after its own timeout
        slow = asyncio.create_task(link.read_registers(3, 0, 1, 1, 5.0, "dev"))
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(DriverTimeout, match=r"no reply within 0\.2 s"):
            await link.read_registers(3, 0, 1, 2, 0.2, "dev")
        assert loop.time() - started < 0.5  # at its own deadline, not the first request's
        assert await slow == struct.pack(">H", 1)
        await asyncio.sleep(0.1)  # the late reply comes, to no request
    finally:
        link.close()


async def test_a_queued_request_times_out_from_when_it_is_sent_not_from_when_it_queued(
    device: Device, link: ModbusLink
) -> None:
    # One transaction at a time: the second waits 0.3 s for the first's reply, longer than its
    # own 0.2 s timeout, and is still answered (its time waiting for the line is not its wait).
    device.script.append(answer_registers([1], delay_s=0.3))
    device.script.append(answer_registers([2], delay_s=0.05))
    first = asyncio.create_task(link.read_registers(3, 0, 1, 1, 2.0, "dev"))
    await asyncio.sleep(0)
    second = asyncio.create_task(link.read_registers(3, 0, 1, 2, 0.2, "dev"))
    await asyncio.sleep(0.05)
    assert len(device.requests) == 1  # the second is queued
    assert await first == struct.pack(">H", 1)
    assert await second == struct.pack(">H", 2)


async def test_a_request_cancelled_while_queued_never_goes_out(
    device: Device, link: ModbusLink
) -> None:
    device.script.append(answer_registers([1], delay_s=0.2))
    device.script.append(answer_registers([3]))
    first = asyncio.create_task(link.read_registers(3, 0, 1, 1, 2.0, "dev"))
    await asyncio.sleep(0)
    given_up = asyncio.create_task(link.read_registers(3, 0, 1, 2, 2.0, "dev"))
    third = asyncio.create_task(link.read_registers(3, 0, 1, 3, 2.0, "dev"))
    await asyncio.sleep(0.05)
    given_up.cancel()
    assert await first == struct.pack(">H", 1)
    assert await third == struct.pack(">H", 3)
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert [unit for _tid, unit, _pdu in device.requests] == [1, 3]


async def test_a_timed_out_request_makes_room_for_the_next_at_its_deadline(
    device: Device, link: ModbusLink
) -> None:
    device.script.append(answer_registers([1], delay_s=0.6))  # long after its timeout
    device.script.append(answer_registers([2]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    late = asyncio.create_task(link.read_registers(3, 0, 1, 1, 0.2, "dev"))
    await asyncio.sleep(0)
    queued = asyncio.create_task(link.read_registers(3, 0, 1, 2, 2.0, "dev"))
    assert await queued == struct.pack(">H", 2)
    assert loop.time() - started < 0.5  # sent at the first's deadline, not after its reply
    with pytest.raises(DriverTimeout, match=r"no reply within 0\.2 s"):
        await late
    await asyncio.sleep(0.6 - (loop.time() - started) + 0.05)  # the late reply: dropped


async def test_a_lost_connection_fails_the_queued_requests_too(
    device: Device, link: ModbusLink
) -> None:
    device.script.append(hang_up)
    reads = [
        asyncio.create_task(link.read_registers(3, 0, 1, unit, 2.0, "dev")) for unit in (1, 2, 3)
    ]
    for read in reads:
        with pytest.raises(NotConnected):
            await read
    assert len(device.requests) == 1  # the two queued ones never went out


async def test_a_deadline_left_pending_is_kept_when_a_later_request_goes_out(
    device: Device,
) -> None:
    """After a timeout, the request sent into the freed room has a later deadline than one still
    pending: the connection's one timer must stay at the earlier."""
    link = await windowed_link(device, 2)
    try:
        device.script.append(answer_registers([1], delay_s=0.8))  # times out at 0.4 s
        device.script.append(answer_registers([2], delay_s=0.8))  # times out at 0.1 s
        device.script.append(answer_registers([3], delay_s=0.3))  # goes out at 0.1 s
        loop = asyncio.get_running_loop()
        started = loop.time()
        slow = asyncio.create_task(link.read_registers(3, 0, 1, 1, 0.4, "dev"))
        quick = asyncio.create_task(link.read_registers(3, 0, 1, 2, 0.1, "dev"))
        queued = asyncio.create_task(link.read_registers(3, 0, 1, 3, 5.0, "dev"))
        with pytest.raises(DriverTimeout):
            await quick
        with pytest.raises(DriverTimeout, match=r"no reply within 0\.4 s"):
            await slow  # at its deadline, not answered by its late reply at 0.8 s
        assert loop.time() - started < 0.75
        assert await queued == struct.pack(">H", 3)
        await asyncio.sleep(0.8 - (loop.time() - started) + 0.05)  # the late replies: dropped
    finally:
        link.close()
