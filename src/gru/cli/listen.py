"""``gru listen``: the words of audio as it arrives, frame by frame, from a speech run."""

from __future__ import annotations

import sys

from gru.cli.options import (
    add_threads,
    examples,
    positive_float,
)

__all__ = ["add_listen", "listen"]


def add_listen(commands):
    listen = commands.add_parser(
        "listen",
        help="recognize the words in audio as it arrives, frame by frame (speech runs)",
        description="Feed AUDIO to the speech model of RUN_DIR in chunks as a microphone would "
        "give them: log-mel frames are computed as their samples arrive, the GRU advances one "
        "step per 10 ms frame, and each word heard is printed with its start time and "
        "probability. The last line gives the compute time per frame and the real-time factor.",
        epilog=examples("gru listen --run runs/speech recording.wav"),
    )
    listen.add_argument("--run", required=True, metavar="RUN_DIR", help="a speech run folder")
    listen.add_argument(
        "audio",
        metavar="AUDIO",
        help="an audio file (WAV, FLAC, OGG), or - for raw 16-bit little-endian mono PCM at the "
        "model's sample rate (8000 Hz by default) on stdin",
    )
    listen.add_argument(
        "--chunk-ms", type=positive_float, default=20.0, help="audio per chunk (default 20 ms)"
    )
    listen.add_argument(
        "--frames",
        action="store_true",
        help="also print the running decision after every frame inside a word",
    )
    add_threads(listen)
    return listen


def _pcm_chunks(stream, samples: int):
    """Chunks of raw 16-bit little-endian PCM from a binary ``stream``, as float32 in [-1, 1)."""
    import numpy as np

    rest, seen = b"", 0
    while chunk := stream.read(2 * samples):
        seen += len(chunk)
        chunk, rest = rest + chunk, b""
        if len(chunk) % 2:
            chunk, rest = chunk[:-1], chunk[-1:]
        yield np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768
    if seen == 0:
        raise ValueError("listen: stdin held no audio; pipe raw 16-bit mono PCM into gru listen -")
    if rest:
        raise ValueError(f"listen: stdin held {seen} bytes, not whole 16-bit samples")


def listen(args) -> int:
    import time

    import torch

    from gru.data.speech import read_audio
    from gru.tasks.speech import SpeechRecognizer

    recognizer = SpeechRecognizer.load(args.run)
    rate = recognizer.config.rate
    chunk = max(1, round(rate * args.chunk_ms / 1000))
    if args.audio == "-":
        pieces = _pcm_chunks(sys.stdin.buffer, chunk)
    else:
        audio = read_audio(args.audio, rate)
        pieces = (audio[i : i + chunk] for i in range(0, len(audio), chunk))
    recognizer.warm_up()
    listener = recognizer.listener()
    listener.trace = [] if args.frames else None
    busy, samples = 0.0, 0
    for piece in pieces:
        started = time.perf_counter()
        heard = listener.push(piece)
        busy += time.perf_counter() - started
        samples += len(piece)
        _say(listener.trace, heard)
    _say(listener.trace, listener.end())
    frames, seconds = max(listener.t, 1), samples / rate
    print(
        f"# {listener.t} frames ({seconds:.2f} s of audio) in {busy:.3f} s: "
        f"{1e6 * busy / frames:.0f} µs per {recognizer.config.hop_ms:g} ms frame, real-time "
        f"factor {busy / max(seconds, 1e-9):.4f}, {torch.get_num_threads()} threads"
    )
    return 0


def _say(trace, heard) -> None:
    for step in trace or []:
        print(f"  {step['time']:7.2f} s  ... {step['word']}  {step['probability']:.3f}")
    if trace:
        trace.clear()
    for word in heard:
        print(f"{word['time']:7.2f} s  {word['word']}\t{word['probability']:.4f}")
