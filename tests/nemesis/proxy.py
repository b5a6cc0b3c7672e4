"""A userspace TCP proxy for delay and loss: this kernel has no netem.

    proxy = TcpProxy(("127.0.0.1", 0), ("10.150.3.11", 9092), seed=7).start()
    proxy.delay_s = 0.05          # each chunk delivered 50 ms after it arrived
    proxy.drop_per_chunk = 0.01   # 1% of chunks kill their connection
    proxy.cut()                   # close every connection, refuse new ones
    proxy.heal()
    proxy.stop()

Loss is connection loss, not packet loss: TCP would retransmit a dropped
segment, so what a Kafka client sees from a lossy link is a stalled or
reset connection, and a reset is what the proxy gives (both sides closed
at once, mid-stream). Delay keeps order and does not serialise: each
direction has a queue of (deliver at, bytes), so a 50 ms delay adds 50 ms
of latency, not 50 ms per chunk.

Where it goes: as a broker's --advertised-addr (clients reach the broker
only through it), or as an address in --controller-quorum-voters (the
Raft traffic to that voter goes through it). It runs an asyncio loop on
a daemon thread; the settings are plain attributes, read per chunk.
"""

from __future__ import annotations

import asyncio
import random
import threading

CHUNK_BYTES_MAX = 64 * 1024
START_WAIT_S_MAX = 10.0
STOP_WAIT_S_MAX = 10.0


class TcpProxy:
    def __init__(self, listen: tuple[str, int], target: tuple[str, int], seed: int = 0) -> None:
        self.listen, self.target = listen, target
        self.rng = random.Random(seed)
        self.delay_s = 0.0
        self.drop_per_chunk = 0.0
        self.cut_off = False
        self.connections = 0
        self.dropped = 0
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"{self.listen[0]}:{self.port}"

    def start(self) -> "TcpProxy":
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._accept, *self.listen), self._loop)
        self._server = fut.result(START_WAIT_S_MAX)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            self._close_all()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(STOP_WAIT_S_MAX)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_WAIT_S_MAX)

    def cut(self) -> None:
        """Closes every connection now and every new one at once."""
        self.cut_off = True
        self._loop.call_soon_threadsafe(self._close_all)

    def heal(self) -> None:
        self.cut_off = False
        self.delay_s = 0.0
        self.drop_per_chunk = 0.0

    def _close_all(self) -> None:
        for w in list(self._open):
            w.close()
        self._open.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.cut_off:
            client_w.close()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self.connections += 1
        self._open |= {client_w, server_w}

        def drop() -> None:
            self.dropped += 1
            for w in (client_w, server_w):
                w.close()
                self._open.discard(w)

        await asyncio.gather(self._pipe(client_r, server_w, drop), self._pipe(server_r, client_w, drop))
        for w in (client_w, server_w):
            w.close()
            self._open.discard(w)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drop) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._deliver(queue, writer))
        try:
            while True:
                data = await reader.read(CHUNK_BYTES_MAX)
                if not data or self.cut_off:
                    break
                if self.drop_per_chunk and self.rng.random() < self.drop_per_chunk:
                    drop()
                    break
                await queue.put((self._loop.time() + self.delay_s, data))
        except (ConnectionError, OSError):
            pass
        await queue.put(None)
        await sender

    async def _deliver(self, queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        try:
            while (item := await queue.get()) is not None:
                deliver_at, data = item
                wait_s = deliver_at - self._loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()
            if not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass
