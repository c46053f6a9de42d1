"""The ``facegate`` command: call a facegate server from the shell, or write a liveness file.

Every API subcommand prints the server's JSON answer (indented) to stdout and exits 0 when its
``code`` is 1000, 1 for any other answer, and 2 for usage errors, unreadable files, key ring
problems or no answer (the message goes to stderr). Keys come from ``--key``/``--iv`` or the
server's own variables (`frontend.crypto.keyring_from_env`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from frontend.contract.liveness_file import LivenessCapture, seal, validate
from frontend.crypto import ENV_AES_IV, ENV_AES_KEY, ENV_AES_KEY_FILE, KeyRing, keyring_from_env
from frontend.sdk.capture import capture_from_images, capture_from_video
from frontend.sdk.client import DEFAULT_URL, ApiResponse, FacegateClient, FacegateClientError

ENV_URL = "FACEGATE_URL"
ENV_API_KEY = "FACEGATE_API_KEY"
EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status instead of exiting (the console script exits)."""
    parser = build_parser(os.environ)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return args.command(args)
    except (FacegateClientError, OSError, ValueError) as error:
        # ValueError covers LivenessFileError and key ring configuration errors.
        print(f"facegate: {error}", file=sys.stderr)
        return EXIT_USAGE


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facegate",
        description="Call a facegate server (SenseID REST contract), or write a liveness file.",
        epilog="Exit status: 0 code 1000, 1 another answer, 2 usage or connection error.",
    )
    parser.add_argument(
        "--url", default=environ.get(ENV_URL, DEFAULT_URL),
        help=f"server base URL (default ${ENV_URL} or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--key", help=f"AES key(s), 32 characters each, comma-separated, the first encrypts "
        f"(default ${ENV_AES_KEY} or ${ENV_AES_KEY_FILE}; prefer those: arguments are visible "
        "to other users)",
    )
    parser.add_argument("--iv", help=f"12-character IV of the legacy form (default ${ENV_AES_IV})")
    parser.add_argument(
        "--legacy", action="store_true",
        help="emit the manual's fixed-IV form instead of a random nonce per payload",
    )
    parser.add_argument(
        "--api-key", default=environ.get(ENV_API_KEY),
        help=f"API key sent as X-Api-Key (default ${ENV_API_KEY})",
    )
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="socket timeout in seconds (default 60)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    verify = _command(commands, "verify", _verify, "compare two photos")
    verify.add_argument("first", type=Path, metavar="A", help="first photo")
    verify.add_argument("second", type=Path, metavar="B", help="second photo")
    _flags(verify, "--auto-rotate", "--check-quality")

    multi = _command(commands, "multi-verify", _multi_verify, "compare every face of two photos")
    multi.add_argument("first", type=Path, metavar="A", help="first photo")
    multi.add_argument("second", type=Path, metavar="B", help="second photo")
    _flags(multi, "--auto-rotate")

    liveness = _command(
        commands, "liveness-verify", _liveness_verify,
        "check a liveness file (given, or made from frames or a video) against a photo",
        epilog="--frames takes several paths: put PHOTO first, or end the list with --.",
    )
    _capture_source(liveness, with_file=True)
    liveness.add_argument("photo", type=Path, metavar="PHOTO", help="photo to compare with")
    _flags(liveness, "--auto-rotate", "--check-quality")

    quality = _command(commands, "quality", _quality, "face quality of a photo")
    quality.add_argument("image", type=Path, metavar="IMG", help="photo")

    detect = _command(commands, "silent-detect", _silent_detect, "silent liveness of a video")
    detect.add_argument("video", type=Path, metavar="VIDEO", help="video (MP4, MOV, WebM)")
    _flags(detect, "--return-image", "--return-face-image", "--return-status")

    silent = _command(
        commands, "silent-verify", _silent_verify,
        "silent liveness of a video and comparison with a photo",
    )
    silent.add_argument("video", type=Path, metavar="VIDEO", help="video (MP4, MOV, WebM)")
    silent.add_argument("photo", type=Path, metavar="PHOTO", help="photo to compare with")
    _flags(silent, "--auto-rotate", "--check-quality", "--return-image", "--return-face-image",
           "--return-status")

    encrypt = _command(
        commands, "encrypt", _encrypt,
        "print a file sealed as an encrypted_image/encrypted_video field (for curl)",
    )
    encrypt.add_argument("file", type=Path, metavar="FILE", help="photo or video")

    opened = _command(
        commands, "session-open", _session_open,
        "open a liveness session for the browser capture page (prints the session as JSON)",
    )
    opened.add_argument("--actions", help="fixed challenge, e.g. turn_left,turn_right "
                        "(default: two at random)")

    captured = _command(
        commands, "session-capture", _session_capture,
        "send a recording to a session as the capture page would",
    )
    captured.add_argument("session", type=Path, metavar="SESSION",
                          help="the JSON session-open printed")
    captured.add_argument("video", type=Path, metavar="VIDEO", help="recording (WebM, MP4)")

    result = _command(commands, "session-result", _session_result, "a liveness session's result")
    result.add_argument("session_id", metavar="ID", help="the session_id")
    result.add_argument("--photo", type=Path, help="reference photo to compare the best frame")
    _flags(result, "--auto-rotate", "--check-quality", "--return-thresholds")

    make = _command(
        commands, "liveness-file", _liveness_file,
        "write a sealed liveness file made from frames or a video",
    )
    make.add_argument("--out", type=Path, required=True, metavar="F", help="file to write")
    _capture_source(make, with_file=False)
    return parser


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    summary: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=summary, description=summary, epilog=epilog)
    sub.set_defaults(command=run)
    return sub


def _flags(sub: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        sub.add_argument(name, action="store_true", help=f"send {name[2:].replace('-', '_')}=true")


def _capture_source(sub: argparse.ArgumentParser, *, with_file: bool) -> None:
    source = sub.add_mutually_exclusive_group(required=True)
    if with_file:
        source.add_argument("--liveness-file", type=Path, metavar="F",
                            help="a sealed liveness file")
    source.add_argument("--frames", type=Path, nargs="+", metavar="IMG", help="still images")
    source.add_argument("--video", type=Path, metavar="V", help="a video to sample frames from")
    sub.add_argument("--count", type=int, default=8, help="frames taken from --video (default 8)")
    sub.add_argument("--interval-ms", type=int, default=200,
                     help="time between --frames images (default 200)")


def _keyring(args: argparse.Namespace) -> KeyRing:
    environ = dict(os.environ)
    if args.key:
        environ[ENV_AES_KEY] = args.key
        environ.pop(ENV_AES_KEY_FILE, None)
    if args.iv:
        environ[ENV_AES_IV] = args.iv
    return keyring_from_env(environ)


def _client(args: argparse.Namespace) -> FacegateClient:
    return FacegateClient(args.url, keyring=_keyring(args), legacy=args.legacy,
                          timeout_s=args.timeout, api_key=args.api_key)


def _report(answer: ApiResponse) -> int:
    print(json.dumps(answer.body, indent=2, ensure_ascii=False))
    return EXIT_OK if answer.ok else EXIT_API_ERROR


def _capture(args: argparse.Namespace) -> LivenessCapture:
    if args.frames:
        capture = capture_from_images(args.frames, interval_ms=args.interval_ms)
    else:
        capture = capture_from_video(args.video, frames=args.count)
    validate(capture)  # refuse here what the server would refuse with 2007
    return capture


def _verify(args: argparse.Namespace) -> int:
    return _report(_client(args).image_verification(
        args.first.read_bytes(), args.second.read_bytes(),
        auto_rotate=args.auto_rotate, check_quality=args.check_quality,
    ))


def _multi_verify(args: argparse.Namespace) -> int:
    return _report(_client(args).multi_face_verification(
        args.first.read_bytes(), args.second.read_bytes(), auto_rotate=args.auto_rotate,
    ))


def _liveness_verify(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.liveness_file:
        sealed = args.liveness_file.read_bytes()
    else:
        sealed = seal(_capture(args), client.keyring, legacy=args.legacy)
    return _report(client.liveness_image_verification(
        sealed, args.photo.read_bytes(),
        auto_rotate=args.auto_rotate, check_quality=args.check_quality,
    ))


def _quality(args: argparse.Namespace) -> int:
    return _report(_client(args).face_quality(args.image.read_bytes()))


def _silent_detect(args: argparse.Namespace) -> int:
    return _report(_client(args).silent_detection(
        args.video.read_bytes(), return_image=args.return_image,
        return_face_image=args.return_face_image, return_status=args.return_status,
    ))


def _silent_verify(args: argparse.Namespace) -> int:
    return _report(_client(args).silent_image_verification(
        args.video.read_bytes(), args.photo.read_bytes(),
        auto_rotate=args.auto_rotate, check_quality=args.check_quality,
        return_image=args.return_image, return_face_image=args.return_face_image,
        return_status=args.return_status,
    ))


def _session_open(args: argparse.Namespace) -> int:
    actions = [a for a in (args.actions or "").split(",") if a]
    return _report(_client(args).open_session(actions))


def _session_client(args: argparse.Namespace) -> FacegateClient:
    # The page's calls need no AES key of the server's: the session brings its own.
    return FacegateClient(args.url, timeout_s=args.timeout, api_key=args.api_key)


def _session_capture(args: argparse.Namespace) -> int:
    session = json.loads(args.session.read_text())
    return _report(_session_client(args).session_capture(session, args.video.read_bytes()))


def _session_result(args: argparse.Namespace) -> int:
    photo = args.photo.read_bytes() if args.photo else None
    return _report(_client(args).session_result(
        args.session_id, photo, auto_rotate=args.auto_rotate, check_quality=args.check_quality,
        return_thresholds=args.return_thresholds,
    ))


def _encrypt(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    if args.legacy and keyring.legacy_iv is None and not keyring.plaintext:
        raise ValueError(f"--legacy needs --iv or {ENV_AES_IV}")
    print(keyring.encrypt(args.file.read_bytes(), legacy=args.legacy))
    return EXIT_OK


def _liveness_file(args: argparse.Namespace) -> int:
    keyring = _keyring(args)
    if args.legacy and keyring.legacy_iv is None and not keyring.plaintext:
        raise ValueError(f"--legacy needs --iv or {ENV_AES_IV}")
    capture = _capture(args)
    sealed = seal(capture, keyring, legacy=args.legacy)
    args.out.write_bytes(sealed)
    print(json.dumps({
        "liveness_file": str(args.out),
        "bytes": len(sealed),
        "format_version": capture.format_version,
        "source": capture.source,
        "timestamps_ms": [frame.timestamp_ms for frame in capture.frames],
    }, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
