#!/usr/bin/python3
"""Plays an RTSP URL through GStreamer's rtspsrc, seeks with a rate (trick
play: GST_SEEK_FLAG_TRICKMODE | TRICKMODE_KEY_UNITS, which rtspsrc sends as
`Scale: <rate>`), and prints every H.264 access unit that comes out of
rtph264depay, identified against the file itself.

Usage: gst_seek_rate.py URL RATE FILE [SECONDS [udp|tcp]]

- RATE > 0 seeks to npt 10 s; RATE < 0 plays from npt 40 s back to 0.
- FILE is the served MP4: its key frames are read with qtdemux + h264parse and
  hashed (the IDR slice NAL units, type 5), so each key frame received over
  RTSP is matched to its presentation time in the file, whatever timestamps
  the client derives.

Output, one line each:
  seek ok|failed
  frame <t> <pts> key|delta <media>
where <t> is the wall-clock arrival in seconds since the seek (negative
before it), <pts> the buffer PTS in seconds (the jitter buffer's, from the
RTP timestamps), and <media> the file presentation time of a key frame, or -.
Exits non-zero with a message on stderr when GStreamer or a plugin is
missing, or the pipeline fails.
"""

import hashlib
import sys
import time

try:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
except (ImportError, ValueError) as e:
    sys.exit(f"python3-gi with GStreamer 1.0 is required: {e}")

CAPS = "video/x-h264,stream-format=byte-stream,alignment=au"


def idr_hash(data):
    """SHA-256 of the IDR slice NAL units of an Annex B access unit, or None."""
    h = hashlib.sha256()
    found = False
    i, n = 0, len(data)
    starts = []
    while i + 3 <= n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            starts.append(i + 3)
            i += 3
        else:
            i += 1
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        # A 4-byte start code leaves a zero byte at the end of the previous NAL.
        while e > s and data[e - 1] == 0 and k + 1 < len(starts):
            e -= 1
        if s < n and data[s] & 0x1F == 5:
            h.update(data[s:e])
            found = True
    return h.hexdigest() if found else None


def make(desc):
    try:
        return Gst.parse_launch(desc)
    except Exception as e:  # GLib.Error: a missing element
        sys.exit(f"cannot build pipeline {desc!r}: {e}")


def file_key_frames(path):
    """IDR hash -> presentation time (s) of every key frame of the file."""
    p = make(
        f"filesrc location={path} ! qtdemux ! h264parse ! {CAPS} ! appsink name=s sync=false"
    )
    sink = p.get_by_name("s")
    p.set_state(Gst.State.PLAYING)
    keys = {}
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        b = sample.get_buffer()
        if b.has_flags(Gst.BufferFlags.DELTA_UNIT):
            continue
        ok, info = b.map(Gst.MapFlags.READ)
        if ok:
            h = idr_hash(bytes(info.data))
            b.unmap(info)
            if h:
                keys[h] = b.pts / Gst.SECOND
    p.set_state(Gst.State.NULL)
    if not keys:
        sys.exit(f"no key frames found in {path}")
    return keys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    url, rate, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 5.5
    protocol = sys.argv[5] if len(sys.argv) > 5 else "tcp"
    if protocol not in ("udp", "tcp"):
        sys.exit(f"protocol must be udp or tcp, not {protocol!r}")
    Gst.init(None)
    keys = file_key_frames(path)
    p = make(
        f"rtspsrc location={url} protocols={protocol} latency=200 ! rtph264depay ! {CAPS} "
        "! fakesink name=sink sync=true"
    )
    frames = []
    seek_at = [None]

    def probe(pad, info):
        b = info.get_buffer()
        now = time.monotonic()
        media = None
        key = not b.has_flags(Gst.BufferFlags.DELTA_UNIT)
        ok, m = b.map(Gst.MapFlags.READ)
        if ok:
            h = idr_hash(bytes(m.data))
            b.unmap(m)
            if h is not None:
                key = True
                media = keys.get(h)
        frames.append((now, b.pts, key, media))
        return Gst.PadProbeReturn.OK

    p.get_by_name("sink").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    bus = p.get_bus()
    p.set_state(Gst.State.PLAYING)

    def run(until):
        while time.monotonic() < until:
            msg = bus.timed_pop_filtered(50 * Gst.MSECOND, Gst.MessageType.ERROR)
            if msg is not None:
                err, dbg = msg.parse_error()
                sys.exit(f"pipeline error: {err.message} ({dbg})")

    run(time.monotonic() + 3.0)
    flags = (
        Gst.SeekFlags.FLUSH
        | Gst.SeekFlags.KEY_UNIT
        | Gst.SeekFlags.TRICKMODE
        | Gst.SeekFlags.TRICKMODE_KEY_UNITS
    )
    seek_at[0] = time.monotonic()
    if rate > 0:
        ok = p.seek(rate, Gst.Format.TIME, flags, Gst.SeekType.SET, 10 * Gst.SECOND,
                    Gst.SeekType.NONE, -1)
    else:
        ok = p.seek(rate, Gst.Format.TIME, flags, Gst.SeekType.SET, 0,
                    Gst.SeekType.SET, 40 * Gst.SECOND)
    print("seek", "ok" if ok else "failed")
    run(seek_at[0] + seconds)
    p.set_state(Gst.State.NULL)
    for now, pts, key, media in frames:
        pts_s = pts / Gst.SECOND if pts != Gst.CLOCK_TIME_NONE else -1.0
        print(
            "frame",
            f"{now - seek_at[0]:.4f}",
            f"{pts_s:.4f}",
            "key" if key else "delta",
            "-" if media is None else f"{media:.3f}",
        )


main()
