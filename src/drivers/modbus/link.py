"""One connection per transport endpoint, shared by the Modbus devices that use it.

An RS-485 line is one shared bus: the devices on it take turns, one request at a time, with the
inter-frame silence between a reply and the next request. A serial-to-Ethernet converter or a
Modbus TCP gateway with several devices behind it is the same. So the connection belongs to the
endpoint, not to a device: every driver of that endpoint holds a reference to one
:class:`ModbusLink` (per event loop), whose lock serialises the requests. A Modbus TCP endpoint
configured with ``max_transactions`` above 1 takes that many requests at once instead (replies
are matched by transaction id), so its devices do not wait for each other's round trips. For
Modbus TCP that window is the MBAP connection's queue (:class:`drivers.modbus.mbap.MbapConnection`),
not a lock: the next request goes out as the previous reply is received.

Modbus TCP goes through :mod:`drivers.modbus.mbap` (MBAP over a bare asyncio protocol, about a
third of pymodbus's CPU per request); RTU and RTU over TCP go through pymodbus. This is the only
module that touches either: every pymodbus, MBAP (and pyserial, termios) exception is mapped here
to the error tree in :mod:`core.errors`, once.

Longer than 500 lines on purpose: it is that one boundary, for both transports and their shared
lock; split, the mapping of library exceptions would no longer sit in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import termios
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from core.cancel import cancellable
from core.clock import Clock
from core.errors import DriverError, DriverTimeout, NotConnected, ProtocolError
from drivers.modbus import mbap
from drivers.modbus.codec import bits_of, crc16, pack_registers
from drivers.modbus.config import ModbusRtu, ModbusRtuOverTcp, ModbusTcp

log = logging.getLogger("etalon.drivers.modbus")

Transport = ModbusTcp | ModbusRtu | ModbusRtuOverTcp

_LIBRARY_TIMEOUT_S = 3600.0
"""pymodbus's own request timeout, set out of the way: every timeout is ours (asyncio.timeout),
per request and per device. pymodbus's would also count 'no response' per connection and close a
shared connection after three, costing every device on the line for one silent device."""

LATE_REPLY_GUARD = 2.0
"""After an RTU request times out, its device is not asked again for this many request timeouts
(other devices on the line are: the framer drops frames from the wrong device id)."""

EXCEPTION_NAMES: dict[int, str] = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    7: "NEGATIVE ACKNOWLEDGE",
    8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE",
    11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}


class ExceptionReply(Exception):
    """The device answered with a Modbus exception response."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.name = EXCEPTION_NAMES.get(code, f"EXCEPTION {code}")
        super().__init__(f"{self.name} (Modbus exception {code})")


def _quiet_pymodbus() -> None:
    # pymodbus logs every missing reply at ERROR with a hex dump; the driver reports the
    # failure through the error tree and the agent logs each state change once.
    library_log = logging.getLogger("pymodbus.logging")
    if library_log.level == logging.NOTSET:
        library_log.setLevel(logging.CRITICAL)


class ModbusLink:
    """The shared connection to one endpoint; see the module doc."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.endpoint = transport.endpoint()
        self.lock = asyncio.Lock()
        """Held to connect, and by a pymodbus exchange (RTU, RTU over TCP: one at a time on the
        line). Modbus TCP requests wait in the MBAP connection's own window instead."""
        self.users = 0
        self.requests = 0
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        """pymodbus's client (RTU, RTU over TCP)."""
        self._mbap: mbap.MbapConnection | None = None
        """The MBAP connection (Modbus TCP)."""
        self._gap_s = 0.0 if isinstance(transport, ModbusTcp) else transport.frame_gap_s()
        self._line_free_at = 0.0
        self._received = b""
        self._quiet_until: dict[int, float] = {}
        self.last_exchange_ns: tuple[int, int] = (0, 0)
        """When the last exchange's request went out and its reply (or failure) came, on the
        clock its caller passed: read it right after the call returns (no await between), and
        the stamp is that exchange's, not the time spent queued for the line."""

    @property
    def connected(self) -> bool:
        """Whether the connection is open."""
        if self._mbap is not None:
            return self._mbap.connected
        return self._client is not None and self._client.connected

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._received = bytes(data)
        return data

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        transport = self.transport
        common = {
            "retries": 0,
            "reconnect_delay": 0,  # reconnecting is the agent's job, with its backoff
            "timeout": _LIBRARY_TIMEOUT_S,
            "trace_packet": self._trace,
            "name": self.endpoint,
        }
        if isinstance(transport, ModbusRtu):
            return AsyncModbusSerialClient(
                transport.port,
                framer=FramerType.RTU,
                **transport.framing(),
                **common,  # type: ignore[arg-type]
            )
        framer = FramerType.RTU if isinstance(transport, ModbusRtuOverTcp) else FramerType.SOCKET
        return AsyncModbusTcpClient(
            transport.host,
            port=transport.port,
            framer=framer,
            **common,  # type: ignore[arg-type]
        )

    async def connect(self, timeout_s: float, name: str) -> None:
        """Open the connection unless it is open. Raises NotConnected or DriverTimeout, naming
        the instrument ``name`` that asked."""
        async with self.lock:
            if self.connected:
                return
            self._close_client()
            if isinstance(self.transport, ModbusTcp):  # requests queue in the connection
                await self._open_mbap(self.transport, timeout_s, name)
                return
            _quiet_pymodbus()
            client = self._new_client()
            self._client = client
            try:
                async with asyncio.timeout(timeout_s):
                    opened = await cancellable(client.connect())
            except TimeoutError as exc:
                self._close_client()
                raise DriverTimeout(
                    name, f"{self.endpoint}: connect timed out after {timeout_s:g} s"
                ) from exc
            except (ModbusException, OSError, termios.error, ValueError) as exc:
                self._close_client()
                raise NotConnected(name, f"{self.endpoint}: {exc}") from exc
            if not opened:
                self._close_client()
                raise NotConnected(name, f"{self.endpoint}: {self._why_not_open()}")
            log.info("modbus link open", extra={"endpoint": self.endpoint})

    async def _open_mbap(self, transport: ModbusTcp, timeout_s: float, name: str) -> None:
        connection = mbap.MbapConnection(transport.max_transactions)
        try:
            async with asyncio.timeout(timeout_s):
                await connection.open(transport.host, transport.port)
        except TimeoutError as exc:
            connection.close()
            raise DriverTimeout(
                name, f"{self.endpoint}: connect timed out after {timeout_s:g} s"
            ) from exc
        except ConnectionRefusedError as exc:
            raise NotConnected(name, f"{self.endpoint}: connection refused") from exc
        except OSError as exc:
            raise NotConnected(name, f"{self.endpoint}: {exc.strerror or exc}") from exc
        self._mbap = connection
        log.info("modbus link open", extra={"endpoint": self.endpoint})

    async def _mbap_request(
        self,
        connection: mbap.MbapConnection,
        pdu: bytes,
        device_id: int,
        timeout_s: float,
        name: str,
        clock: Clock | None,
    ) -> bytes:
        """One request on the MBAP connection: the response PDU as received; raises
        DriverTimeout, ProtocolError, NotConnected. The connection's window queues it; no task,
        no ``wait_for``: a cancellation reaches the request's future directly. With ``clock``,
        sets ``last_exchange_ns`` (from when the request went out, not when it was queued).
        :meth:`read_registers` does the same inline (the poll's path, one frame less)."""
        exchange = self._submit(connection, pdu, device_id, name, timeout_s, clock)
        try:
            return await exchange.future
        except mbap.MbapError as exc:
            raise self._mbap_failure(exc, connection, timeout_s, name) from exc
        except BaseException:  # cancelled: its room in the window goes to the next request
            connection.forget(exchange)
            raise
        finally:
            if clock is not None:
                ended = clock.now_ns()
                self.last_exchange_ns = (exchange.sent_ns or ended, ended)

    def _submit(
        self,
        connection: mbap.MbapConnection,
        pdu: bytes,
        device_id: int,
        name: str,
        timeout_s: float,
        clock: Clock | None,
    ) -> mbap.Exchange:
        self.requests += 1
        try:
            return connection.submit(device_id, pdu, timeout_s, clock)
        except mbap.MbapClosed as exc:
            raise NotConnected(name, f"{self.endpoint}: {exc}") from exc

    def _mbap_failure(
        self, exc: mbap.MbapError, connection: mbap.MbapConnection, timeout_s: float, name: str
    ) -> DriverError:
        """An MBAP failure in the error tree."""
        if isinstance(exc, mbap.MbapTimeout):
            late = connection.late_replies
            if late and self.connected:
                # A slow device, not a garbled line: what came is replies to earlier requests.
                shown = late[:32].hex(" ")
                return DriverTimeout(
                    name,
                    f"no reply within {timeout_s:g} s (late replies to earlier requests: {shown})",
                )
            return self._no_reply(timeout_s, name, connection.received)
        if isinstance(exc, mbap.MbapGarbled):
            return ProtocolError(name, f"unusable reply: {exc}")
        return NotConnected(name, f"{self.endpoint}: {exc}")

    async def _mbap_exchange(
        self,
        connection: mbap.MbapConnection,
        function: int,
        pdu: bytes,
        device_id: int,
        timeout_s: float,
        name: str,
    ) -> mbap.Response:
        """:meth:`_mbap_request`, the response taken apart; raises ExceptionReply for an
        exception response, and as :meth:`_mbap_request`."""
        reply = await self._mbap_request(connection, pdu, device_id, timeout_s, name, None)
        return _parsed(function, reply, name)

    def _why_not_open(self) -> str:
        if isinstance(self.transport, ModbusRtu):
            if not os.path.exists(self.transport.port):
                return "no such serial port"
            return "cannot open the serial port (busy, no permission or unsupported settings)"
        return "connection refused"

    async def _exchange(
        self,
        request: Callable[[AsyncModbusTcpClient | AsyncModbusSerialClient], Awaitable[Any]],
        device_id: int,
        timeout_s: float,
        name: str,
        clock: Clock | None = None,
    ) -> Any:
        """One request/response on the line, under its lock, within ``timeout_s``; the
        response. Raises ExceptionReply for an exception response (as :meth:`_mbap_exchange`
        does), DriverTimeout, ProtocolError, NotConnected. With ``clock``, sets
        ``last_exchange_ns``."""
        async with self.lock:
            client = self._client
            if client is None or not client.connected:
                raise NotConnected(name, f"{self.endpoint}: not connected")
            loop = asyncio.get_running_loop()
            if loop.time() < self._quiet_until.get(device_id, 0.0):
                raise DriverTimeout(
                    name, f"no reply within {timeout_s:g} s (waiting out a late reply)"
                )
            wait = self._line_free_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._received = b""
            self.requests += 1
            if clock is not None:
                started = clock.now_ns()
            try:
                async with asyncio.timeout(timeout_s):
                    response = await cancellable(request(client))
            except TimeoutError as exc:
                if not isinstance(self.transport, ModbusTcp) and not self._received:
                    # An RTU reply carries no transaction id: a late reply to this request
                    # would be taken for the answer to the device's next one. Leave the device
                    # alone until a late reply has had time to come and be discarded.
                    self._quiet_until[device_id] = loop.time() + LATE_REPLY_GUARD * timeout_s
                raise self._no_reply(timeout_s, name, self._received) from exc
            except ConnectionException as exc:
                raise NotConnected(name, f"{self.endpoint}: {exc}") from exc
            except ModbusIOException as exc:
                if not client.connected:
                    raise NotConnected(name, f"{self.endpoint}: connection lost") from exc
                raise ProtocolError(name, f"unusable reply: {exc}") from exc
            except ModbusException as exc:
                raise ProtocolError(name, f"unusable reply: {exc}") from exc
            finally:
                self._line_free_at = loop.time() + self._gap_s
                if clock is not None:
                    self.last_exchange_ns = (started, clock.now_ns())
        if response.isError():
            raise ExceptionReply(int(response.exception_code))
        return response

    async def read(
        self,
        function: int,
        address: int,
        count: int,
        device_id: int,
        timeout_s: float,
        name: str,
        clock: Clock | None = None,
    ) -> list[int] | list[bool]:
        """One read request (function code 1-4) for the instrument ``name``. Raises
        ExceptionReply for an exception response, DriverTimeout for no reply, ProtocolError for
        an unusable one, NotConnected. With ``clock``, the exchange's own start and end are in
        ``last_exchange_ns`` when it returns or raises."""
        if function in (3, 4):
            data = await self.read_registers(
                function, address, count, device_id, timeout_s, name, clock
            )
            return list(struct.unpack(f">{count}H", data))
        connection = self._mbap
        if connection is not None:
            pdu = mbap.read_request(function, address, count)
            reply = await self._mbap_request(connection, pdu, device_id, timeout_s, name, clock)
            bits = bits_of(_parsed(function, reply, name).data, count)
        else:
            response = await self._exchange(
                _read_call(function, address, count, device_id), device_id, timeout_s, name, clock
            )
            bits = list(response.bits)
        if len(bits) < count:
            raise ProtocolError(name, f"reply has {len(bits)} bits, asked {count}")
        return bits[:count]

    async def read_registers(
        self,
        function: int,
        address: int,
        count: int,
        device_id: int,
        timeout_s: float,
        name: str,
        clock: Clock | None = None,
    ) -> bytes:
        """One read of registers (function code 3 or 4): the registers as sent, two bytes each,
        high byte first. Raises as :meth:`read`."""
        connection = self._mbap
        if connection is not None:
            pdu = mbap.read_request(function, address, count)
            exchange = self._submit(connection, pdu, device_id, name, timeout_s, clock)
            try:
                reply = await exchange.future
            except mbap.MbapError as exc:
                raise self._mbap_failure(exc, connection, timeout_s, name) from exc
            except BaseException:  # as in _mbap_request
                connection.forget(exchange)
                raise
            finally:
                if clock is not None:
                    ended = clock.now_ns()
                    self.last_exchange_ns = (exchange.sent_ns or ended, ended)
            size = 2 * count
            if len(reply) == size + 2 and reply[0] == function and reply[1] == size:
                return reply[2:]  # the usual reply, checked without taking it apart
            data = _parsed(function, reply, name).data
            if len(data) != size:
                shown = len(data) // 2
                raise ProtocolError(name, f"reply has {shown} registers, asked for {count}")
            return data
        response = await self._exchange(
            _read_call(function, address, count, device_id), device_id, timeout_s, name, clock
        )
        registers = list(response.registers)
        if len(registers) != count:
            raise ProtocolError(name, f"reply has {len(registers)} registers, asked for {count}")
        return pack_registers(registers, False)

    async def write(
        self,
        function: int,
        address: int,
        values: list[int] | list[bool],
        device_id: int,
        timeout_s: float,
        name: str,
    ) -> str:
        """One write request (function code 5, 6, 15 or 16) for the instrument ``name``; what
        the device's response confirms, in words. Raises like :meth:`read`, and ProtocolError
        when the response does not echo the request."""
        connection = self._mbap
        if connection is not None:
            pdu = mbap.write_request(function, address, values)
            reply = await self._mbap_exchange(connection, function, pdu, device_id, timeout_s, name)
            echoed_value: list[bool] | list[int] = (
                [reply.value == 0xFF00] if function == 5 else [reply.value]
            )
            return _confirmed(
                function, address, values, reply.address, echoed_value, reply.value, name
            )

        def request(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[Any]:
            if function == 5:
                return client.write_coil(address, bool(values[0]), device_id=device_id)
            if function == 6:
                return client.write_register(address, int(values[0]), device_id=device_id)
            if function == 15:
                return client.write_coils(address, [bool(v) for v in values], device_id=device_id)
            return client.write_registers(address, [int(v) for v in values], device_id=device_id)

        response = await self._exchange(request, device_id, timeout_s, name)
        field: list[bool] | list[int] = (
            list(response.bits)[:1] if function == 5 else list(response.registers)[:1]
        )
        return _confirmed(
            function,
            address,
            values,
            int(getattr(response, "address", -1)),
            field,
            int(getattr(response, "count", -1)),
            name,
        )

    def _no_reply(self, timeout_s: float, name: str, received: bytes) -> DriverError:
        if not self.connected:
            return NotConnected(name, f"{self.endpoint}: connection lost")
        if not received:
            return DriverTimeout(name, f"no reply within {timeout_s:g} s")
        shown = received[:32].hex(" ")
        rtu = not isinstance(self.transport, ModbusTcp)
        if rtu and len(received) >= 4 and crc16(received[:-2]) != received[-2:]:
            return ProtocolError(name, f"reply failed its CRC check: {shown}")
        return ProtocolError(name, f"unusable reply: {shown}")

    async def read_identification(
        self, device_id: int, timeout_s: float, name: str, read_code: int = 1, object_id: int = 0
    ) -> dict[int, bytes]:
        """FC 43/14 device identification objects (read code 1 basic, 2 regular, 3 extended,
        4 one object); raises like :meth:`read`."""
        connection = self._mbap
        if connection is not None:
            pdu = mbap.identification_request(read_code, object_id)
            reply = await self._mbap_exchange(connection, 0x2B, pdu, device_id, timeout_s, name)
            return dict(reply.objects)

        def request(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[Any]:
            return client.read_device_information(
                read_code=read_code, object_id=object_id, device_id=device_id
            )

        response = await self._exchange(request, device_id, timeout_s, name)
        information: dict[int, object] = getattr(response, "information", {})
        return {int(k): v for k, v in information.items() if isinstance(v, bytes)}

    def _close_client(self) -> None:
        connection, self._mbap = self._mbap, None
        if connection is not None:
            connection.close()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(ModbusException, OSError):
                client.close()

    def close(self) -> None:
        """Close the connection (the next connect opens a new one)."""
        if self._client is not None or self._mbap is not None:
            log.info("modbus link closed", extra={"endpoint": self.endpoint})
        self._close_client()


def _parsed(function: int, reply: bytes, name: str) -> mbap.Response:
    """A response PDU taken apart; ExceptionReply for an exception response, ProtocolError for
    one that answers no request of ``function``."""
    try:
        response = mbap.parse_response(function, reply)
    except mbap.ResponseError as exc:
        shown = reply[:32].hex(" ")
        raise ProtocolError(name, f"unusable reply: {exc} ({shown})") from exc
    if response.exception is not None:
        raise ExceptionReply(response.exception)
    return response


def _read_call(
    function: int, address: int, count: int, device_id: int
) -> Callable[[AsyncModbusTcpClient | AsyncModbusSerialClient], Awaitable[Any]]:
    def request(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> Awaitable[Any]:
        call = {
            1: client.read_coils,
            2: client.read_discrete_inputs,
            3: client.read_holding_registers,
            4: client.read_input_registers,
        }[function]
        return call(address, count=count, device_id=device_id)

    return request


def _confirmed(
    function: int,
    address: int,
    values: list[int] | list[bool],
    echoed_address: int,
    echoed_value: list[int] | list[bool],
    echoed_count: int,
    name: str,
) -> str:
    """What a write response confirms, in words; ProtocolError when it does not echo the
    request."""
    if echoed_address != address:
        raise ProtocolError(
            name, f"FC {function} response names address {echoed_address}, the request {address}"
        )
    if function in (5, 6):
        if [int(v) for v in echoed_value] != [int(values[0])]:
            raise ProtocolError(
                name, f"FC {function} response echoes {echoed_value}, the request {values[:1]}"
            )
        return f"FC {function} echo: address {address}, value {echoed_value[0]!r}"
    if echoed_count != len(values):
        raise ProtocolError(
            name, f"FC {function} response counts {echoed_count}, the request {len(values)}"
        )
    return f"FC {function} response: address {address}, count {echoed_count}"


_LINKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ModbusLink]] = (
    weakref.WeakKeyDictionary()
)


def acquire_link(transport: Transport, name: str) -> ModbusLink:
    """The link of an endpoint in the running loop, created on first use; count one user.

    Raises NotConnected when the endpoint is already in use with other settings (two configs
    that disagree about one serial line's baud rate cannot both be right)."""
    links = _LINKS.setdefault(asyncio.get_running_loop(), {})
    link = links.get(transport.endpoint())
    if link is None:
        link = links[transport.endpoint()] = ModbusLink(transport)
    elif link.transport != transport:
        raise NotConnected(
            name,
            f"{transport.endpoint()} is already open with other settings "
            f"({link.transport.model_dump()})",
        )
    link.users += 1
    return link


def release_link(link: ModbusLink) -> None:
    """Count one user less; the last one closes the connection."""
    link.users -= 1
    if link.users > 0:
        return
    link.close()
    with contextlib.suppress(RuntimeError):
        links = _LINKS.get(asyncio.get_running_loop(), {})
        if links.get(link.endpoint) is link:
            del links[link.endpoint]
