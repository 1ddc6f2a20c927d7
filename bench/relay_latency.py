"""Relay latency for bench/live.py: a station on a real Icecast, relayed to the simulated fleet.

The station (ffmpeg `-re`, 20 ms Ogg pages) is silence with a 200 ms 1 kHz tone every CLICK_MS. The relay
reads it through a tap, a loopback TCP proxy that notes when each Ogg page (its granule position: the
stream position) reaches the relay's input. Each cluster's received audio is decoded with ffmpeg; each
tone onset in it is placed on the cluster's output clock (its frame's output time) and matched to the
station position it came from, whose arrival at the relay's input the tap noted.
relay latency = output time − arrival time of the same stream position at the relay's input.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from simulator.fleet import Fleet
from simulator.hardware import PlayedFrame
from speakerctl.audio.ffmpeg import ffmpeg_exe
from speakerctl.audio.live import SILENCE_PACKET
from speakerctl.audio.ogg import ogg_opus
from speakerctl.broker.ports import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from icecast import PASSWORD, Icecast, running_icecast

CLICK_MS = 5_000
RATE = 48_000
THRESHOLD = 3_000
"""A sample this loud (of 32,767) after a quiet second is a tone's onset."""
MOUNT = "bench.ogg"
__all__ = ["Tap", "latencies", "running_icecast", "station"]


@contextmanager
def station(icecast: Icecast, root: Path, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    """Feed the mount in real time with the clicking signal, 20 ms pages, as a station's encoder would."""
    signal = f"if(lt(mod(t\\,{CLICK_MS / 1000:g})\\,0.2)\\,0.5*sin(2*PI*1000*t)\\,0)"
    source = f"icecast://source:{PASSWORD}@127.0.0.1:{icecast.port}/{MOUNT}"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
           "-i", f"aevalsrc={signal}:s={RATE}:d={seconds + 30:g}", "-ac", "1", "-c:a", "libopus",
           "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", "-flush_packets", "1",
           "-content_type", "application/ogg", "-f", "ogg", source]  # fmt: skip
    feeder = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not icecast.has_mount(MOUNT) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield feeder
    finally:
        feeder.kill()
        feeder.wait(10)


class Tap:
    """A TCP proxy before Icecast: the wall time (ms) each Ogg page's granule reached the relay's input."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.arrivals: list[tuple[int, float]] = []

    @property
    def url(self) -> str:
        """The relay's URL through the tap."""
        return f"http://127.0.0.1:{self.port}/{MOUNT}"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Tap]:
        """Listen until the block ends."""
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        upward = asyncio.create_task(_pipe(reader, up_writer))
        try:
            await self._down(up_reader, writer)
        finally:
            upward.cancel()
            for w in (writer, up_writer):
                w.close()

    async def _down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending, body = b"", False
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                now = time.time_ns() / 1e6
                writer.write(data)
                await writer.drain()
                pending += data
                if not body:
                    _, sep, rest = pending.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    body, pending = True, rest
                pending = self._pages(pending, now)

    def _pages(self, data: bytes, now: float) -> bytes:
        """Note each complete page's granule; return what is left of an incomplete one."""
        while len(data) >= 27 and data[:4] == b"OggS" and len(data) >= 27 + data[26]:
            segments = data[26]
            size = 27 + segments + sum(data[27 : 27 + segments])
            if len(data) < size:
                break
            (granule,) = struct.unpack_from("<q", data, 6)
            if granule > 0:
                self.arrivals.append((granule, now))
            data = data[size:]
        return data

    def arrival_ms(self, position_ms: float) -> float | None:
        """When the page holding this stream position reached the relay's input."""
        sample = position_ms * RATE / 1000
        return next((at for granule, at in self.arrivals if granule >= sample), None)

    def first_position_ms(self) -> float:
        """The stream position the relay started from (its first page's start)."""
        return (self.arrivals[0][0] * 1000 / RATE) - 20


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()


def _pcm(packets: list[bytes], root: Path, name: str) -> bytes:
    path = root / f"{name}.opus"
    path.write_bytes(ogg_opus(packets, samples_per_packet=960))
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
           "-ar", str(RATE), "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout


def onsets_ms(pcm: bytes) -> list[float]:
    """Where each tone starts, ms into the decoded audio (a loud sample after a quiet second)."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    found, quiet = [], RATE  # the start counts as quiet
    for i, x in enumerate(samples):
        if abs(x) >= THRESHOLD:
            if quiet >= RATE:
                found.append(i * 1000 / RATE)
            quiet = 0
        else:
            quiet += 1
    return found


def latencies(fleet: Fleet, tap: Tap, root: Path, sample: int = 8) -> list[float]:
    """Relay latency of every tone heard, on a sample of the clusters that played most of the stream."""
    start = tap.first_position_ms()
    players = sorted(fleet.devices.values(), key=lambda d: -len(d.output.live_frames))
    found: list[float] = []
    for n, device in enumerate(p for p in players[:sample] if p.output.live_frames):
        found += _heard(device.output.live_frames, start, tap, root, f"relay-{n}")
    return found


def _heard(frames: list[PlayedFrame], start: float, tap: Tap, root: Path, name: str) -> list[float]:
    """Each tone a cluster played: its output time − its stream position's arrival at the relay's input.
    Frames it did not play are filled with silence, so the decoded audio keeps the stream's timeline."""
    by_seq = {f.seq: f for f in frames}
    per_frame = len(frames[0].packets)
    packets = [p for seq in range(max(by_seq) + 1) for p in _packets_of(by_seq.get(seq), per_frame)]
    frame_ms = per_frame * 20
    found = []
    for onset in onsets_ms(_pcm(packets, root, name)):
        played = by_seq.get(int(onset // frame_ms))
        if played is None:
            continue  # concealed on the cluster: no output time
        heard_at = played.host_ms + onset - played.seq * frame_ms
        position = round((start + onset) / CLICK_MS) * CLICK_MS  # the station's tone it came from
        arrived = tap.arrival_ms(position)
        if arrived is not None:
            found.append(heard_at - arrived)
    return found


def _packets_of(frame: PlayedFrame | None, count: int) -> tuple[bytes, ...]:
    return frame.packets if frame is not None else (SILENCE_PACKET,) * count
