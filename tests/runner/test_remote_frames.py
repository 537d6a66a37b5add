"""The framing of a remote worker's channels, and its command line (proctor.runner.remote)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from proctor.runner.dask_backend import remote_argv
from proctor.runner.remote import CAPTURE, COMMANDS, RESULTS, decode_frames, encode_frame
from proctor.runner.subprocess_backend import WorkerSpec

_frames = st.lists(st.tuples(st.sampled_from([b"C", b"R", b"O", b"X", b"K"]), st.binary()))


@given(_frames, st.lists(st.integers(0, 200)))
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_cut(
    frames: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(kind, payload) for kind, payload in frames)
    buffer = bytearray()
    got: list[tuple[bytes, bytes]] = []
    position = 0
    for cut in [*cuts, len(stream)]:
        end = min(len(stream), position + cut) if cut else len(stream)
        buffer.extend(stream[position:end])
        position = end
        got.extend(decode_frames(buffer))
    buffer.extend(stream[position:])
    got.extend(decode_frames(buffer))
    assert got == frames
    assert buffer == bytearray()


def test_the_remote_command_line_has_placeholders_only_where_the_channels_go() -> None:
    spec = WorkerSpec(
        root=Path("/p"), framework="pytest", pytest_args=("-k", "{x} and --capture-dir=@")
    )
    argv = remote_argv(spec)
    assert argv[:3] == ["-m", "proctor.worker", "--serve"]
    assert argv.count(COMMANDS) == argv.count(RESULTS) == argv.count(CAPTURE) == 1
    assert argv[-2:] == ["-k", "{x} and --capture-dir=@"]  # a pytest argument is left alone
    assert CAPTURE not in remote_argv(WorkerSpec(root=Path("/p"), capture=False))
