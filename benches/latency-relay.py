#!/usr/bin/env python3
"""TCP relay that adds a fixed one-way delay in each direction (RTT = 2 * delay).

  latency_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT [--delay-ms 10] [--connect-rtt]

Plain TCP, so TLS, HTTP/1.1 keep-alive and HTTP/2 pass through untouched. Every chunk read
is delivered DELAY after it was read, in order, so latency is added without capping throughput
(pipelined data is not serialized behind the delay). Half-closes (EOF) are forwarded after the
same delay. --connect-rtt additionally holds the first client->server bytes for one RTT, to
model the TCP handshake that the local accept() otherwise completes instantly.
Prints "listening HOST PORT" on stdout once ready (PORT 0 picks a free port).
"""
import argparse, asyncio, signal, socket, sys, time

CHUNK = 64 * 1024
QUEUE = 256  # chunks buffered per direction before the reader pauses (backpressure)


async def pump(reader, src, dst, delay, extra_first=0.0):
    """Copy reader -> dst, each chunk delivered `delay` s after it was read. src is the
    writer of the socket `reader` reads from (aborted if dst breaks)."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(QUEUE)

    async def read_side():
        first = True
        try:
            while True:
                data = await reader.read(CHUNK)
                due = loop.time() + delay + (extra_first if first else 0.0)
                first = False
                await q.put((due, data))  # b"" = EOF
                if not data:
                    return
        except (ConnectionError, OSError):
            await q.put((loop.time(), None))  # reset: abort the other side

    rt = asyncio.create_task(read_side())
    try:
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                dst.transport.abort()
                return
            if not data:
                if dst.can_write_eof():
                    dst.write_eof()
                return
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        src.transport.abort()
    finally:
        rt.cancel()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


ACTIVE = set()


async def handle(c_reader, c_writer, target, delay, connect_rtt):
    ACTIVE.add(asyncio.current_task())
    try:
        await _handle(c_reader, c_writer, target, delay, connect_rtt)
    except asyncio.CancelledError:
        pass  # shutdown; the streams callback would log a traceback for a cancelled task
    finally:
        ACTIVE.discard(asyncio.current_task())


async def _handle(c_reader, c_writer, target, delay, connect_rtt):
    try:
        u_reader, u_writer = await asyncio.open_connection(*target)
    except OSError as e:
        print(f"upstream connect failed: {e}", file=sys.stderr)
        c_writer.transport.abort()
        return
    nodelay(c_writer); nodelay(u_writer)
    try:
        await asyncio.gather(
            pump(c_reader, c_writer, u_writer, delay, 2 * delay if connect_rtt else 0.0),
            pump(u_reader, u_writer, c_writer, delay),
        )
    finally:
        for w in (c_writer, u_writer):
            w.close()


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen"); ap.add_argument("target")
    ap.add_argument("--delay-ms", type=float, default=10.0, help="one-way delay per direction")
    ap.add_argument("--connect-rtt", action="store_true")
    a = ap.parse_args()
    delay, target = a.delay_ms / 1000.0, hostport(a.target)
    lh, lp = hostport(a.listen)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay, a.connect_rtt), lh, lp, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {lh} {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: print(f"active connections: {len(ACTIVE)}", file=sys.stderr, flush=True))
    async with server:
        await stop.wait()
        server.close()
        for t in list(ACTIVE):
            t.cancel()
        await asyncio.gather(*ACTIVE, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
