"""The liveness session's active challenge, beside the silent check, in ISO/IEC 30107-3 terms.

    .venv/bin/python -m benchmarks.challenge_eval [--data-dir ../shared/data]

Each clip goes through the server's own steps in-process (`VideoService.silent_liveness`, then
`preprocessing.challenge.check_challenge` on the same frames' head poses), and is checked
against every challenge a session can draw with two actions (12 ordered pairs).

- **Bona fide, asked what they do** (BPCER): the live clips whose person makes moves a session
  could ask for, asked exactly those (d12: turn left, then right; d3: turn left; annotated from
  the frames, not from the checker), plain and in every degraded copy
  (`benchmarks.live_variants`; not the ``@still`` copies, which are cut where the person makes
  no move). A refusal here is a genuine user sent back.
- **Attacks** (APCER): the replays, photos held up by hand and screen re-renderings of
  `benchmarks.liveness_eval`, each under all 12 challenges: the share of (attack, challenge)
  pairs that pass the challenge alone, the silent check alone, and both (the session).
- **Injected recordings** (APCER): every live clip and degraded copy sent as the capture of a
  session whose challenge it was not recorded for (an attacker's recording of the real person,
  injected past the camera): the silent check cannot refuse these, only the challenge can.

Writes ``benchmarks/results/challenge_eval.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import json
import platform
from pathlib import Path

import numpy as np

from benchmarks import live_variants
from benchmarks.liveness_eval import Sample, attacks
from benchmarks.paths import DATA, RESULTS
from benchmarks.stats import upper_bound
from frontend.contract.codes import ContractError
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.photos import PhotoService
from frontend.service.sessions import failed_check, pose_track
from frontend.service.stages import Stages
from frontend.service.video import VideoService
from preprocessing.challenge import Action, check_challenge
from preprocessing.image import PhotoLimits
from preprocessing.video import VideoError, VideoLimits

THRESHOLD = 0.5
PERFORMED = {
    "liveportrait_driving_d12.mp4": (Action.TURN_LEFT, Action.TURN_RIGHT),
    "liveportrait_driving_d3.mp4": (Action.TURN_LEFT,),
}
"""What each live clip's person does that a session could ask (seen in the frames: d12 turns
to his left at 1.4-2.0 s and to his right at 3.2-3.6 s; d3 turns to her left twice)."""
CHALLENGES = list(itertools.permutations(Action, 2))


def _source(name: str) -> str:
    return name.split("@", 1)[0]


def _samples(data: Path) -> list[Sample]:
    out: list[Sample] = [("live", "live", p.name, True, p.read_bytes)
                         for p in live_variants.clips(data)]
    for name in live_variants.all_names(data):
        out.append(("degraded", name.split("@", 1)[1], name, True,
                    lambda n=name: live_variants.variant_bytes(n, data=data)))
    return out + attacks(data)


async def _evaluate(samples: list[Sample], videos: VideoService) -> list[dict]:
    limit = asyncio.Semaphore(2)

    async def one(sample: Sample) -> dict:
        set_name, kind, name, bona_fide, make = sample
        row = {"set": set_name, "kind": kind, "file": name, "bona_fide": bona_fide}
        async with limit:
            video = await asyncio.to_thread(make)
            try:
                liveness = await videos.silent_liveness(video)
            except (ContractError, VideoError) as error:
                return row | {"error": str(error)}
        track = pose_track(liveness)
        # A "still" copy is the 3 s where the person holds still: it makes no moves.
        makes_moves = bona_fide and "still" not in kind.split("+")
        performed = PERFORMED.get(_source(name)) if makes_moves else None
        asked = [performed] if performed else []
        row |= {
            "silent_passed": liveness.passed, "status": liveness.status,
            "score": round(liveness.score, 4),
            "challenges_passed": ["+".join(a.value for a in c) for c in CHALLENGES
                                  if check_challenge(track, c).passed],
        }
        if asked:
            result = check_challenge(track, asked[0])
            row |= {"asked": "+".join(a.value for a in asked[0]),
                    "asked_passed": result.passed,
                    "session_failed_check": failed_check(result, liveness)}
        print(json.dumps(row), flush=True)
        return row

    return list(await asyncio.gather(*(one(s) for s in samples)))


def _rate(errors: int, n: int) -> dict:
    return {"errors": errors, "n": n, "rate": errors / n if n else None,
            "upper_95": upper_bound(errors, n)}


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    asked = [r for r in ok if "asked" in r]
    out: dict = {"bona_fide_asked": {
        "challenge_refused": _rate(sum(not r["asked_passed"] for r in asked), len(asked)),
        "silent_refused": _rate(sum(not r["silent_passed"] for r in asked), len(asked)),
        "session_refused": _rate(sum(r["session_failed_check"] is not None for r in asked),
                                 len(asked)),
        "errors_4007_2008": sum("error" in r for r in rows
                                if r["bona_fide"] and _source(r["file"]) in PERFORMED
                                and "still" not in r["kind"].split("+")),
    }}
    attack_rows = [r for r in rows if not r["bona_fide"]]
    pairs = len(CHALLENGES)
    kinds: dict[str, dict] = {}
    for kind in dict.fromkeys(r["kind"] for r in attack_rows):
        group = [r for r in attack_rows if r["kind"] == kind]
        decided = [r for r in group if "error" not in r]
        n = len(group) * pairs  # an attack that errors (4007, 2008) is refused
        kinds[kind] = {
            "challenge": _rate(sum(len(r["challenges_passed"]) for r in decided), n),
            "silent": _rate(sum(r["silent_passed"] * pairs for r in decided), n),
            "session": _rate(sum(len(r["challenges_passed"]) * r["silent_passed"]
                                 for r in decided), n),
        }
    everything = {m: _rate(sum(k[m]["errors"] for k in kinds.values()),
                           sum(k[m]["n"] for k in kinds.values()))
                  for m in ("challenge", "silent", "session")}
    out["attacks"] = {"by_kind": kinds, "all": everything}
    names = {"+".join(a.value for a in c) for c in CHALLENGES}
    injected, n_injected = [], 0
    for r in rows:
        if not r["bona_fide"]:
            continue
        own = r.get("asked")
        n_injected += len(CHALLENGES) - (own in names)  # an error (4007, 2008) refuses all
        if "error" not in r:
            injected.append(sum(c != own for c in r["challenges_passed"]))
    out["injected_recordings"] = {
        "challenge_passed": _rate(sum(injected), n_injected),
        "clips_passing_any": sum(1 for i in injected if i),
        "clips": len(injected),
    }
    return out


def _fmt(rate: dict) -> str:
    if not rate["n"]:
        return "-"
    percent, bound = 100 * rate["rate"], 100 * rate["upper_95"]
    return f"{rate['errors']}/{rate['n']} = {percent:.1f}% (<= {bound:.1f}%)"


def _markdown(summary: dict, rows: list[dict], command: str) -> str:
    bona = summary["bona_fide_asked"]
    lines = [
        "# Active challenge beside the silent check", "",
        f"`{command}` on {platform.node()} ({platform.processor() or platform.machine()}, CPU, "
        "ONNX Runtime / OpenVINO in-process). Rates are errors/count = rate (one-sided 95% "
        "Clopper-Pearson upper bound).", "",
        "## Bona fide, asked for the moves they make (BPCER)", "",
        "| check | refused |", "|---|---|",
        f"| challenge alone | {_fmt(bona['challenge_refused'])} |",
        f"| silent alone | {_fmt(bona['silent_refused'])} |",
        f"| session (both) | {_fmt(bona['session_refused'])} |", "",
        f"Clips: d12 and d3, plain and degraded (not the `@still` copies, cut where the person "
        f"holds still); {bona['errors_4007_2008']} of their copies "
        "were refused before any decision (4007/2008) and are not counted.", "",
        "Refused copies: " + (", ".join(
            f"{r['file']} ({r['session_failed_check']})" for r in rows
            if r.get("session_failed_check")) or "none"), "",
        "## Attacks under every two-action challenge (APCER over attack x challenge pairs)", "",
        "| attack | n | challenge alone | silent alone | session |", "|---|---|---|---|---|",
    ]
    for kind, rates in summary["attacks"]["by_kind"].items():
        lines.append(f"| {kind} | {rates['session']['n'] // len(CHALLENGES)} | "
                     f"{_fmt(rates['challenge'])} | {_fmt(rates['silent'])} | "
                     f"{_fmt(rates['session'])} |")
    total = summary["attacks"]["all"]
    lines += [
        f"| **all** | | {_fmt(total['challenge'])} | {_fmt(total['silent'])} | "
        f"{_fmt(total['session'])} |", "",
        "## Injected live recordings (a genuine recording sent to a session it was not made for)",
        "",
        f"Challenge passed: {_fmt(summary['injected_recordings']['challenge_passed'])}; "
        f"{summary['injected_recordings']['clips_passing_any']} of "
        f"{summary['injected_recordings']['clips']} recordings pass some challenge they were "
        "not asked for. The silent check passes such recordings (they are live): this row is "
        "what the challenge adds.", "",
        "Which recordings pass which challenges by chance: " + (", ".join(
            f"{r['file']}: {', '.join(r['challenges_passed'])}" for r in rows
            if r["bona_fide"] and r.get("challenges_passed")
            and set(r["challenges_passed"]) - {r.get("asked")}) or "none"), "",
    ]
    return "\n".join(lines)


async def _main(data: Path) -> list[dict]:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pipeline = FacePipeline(OnnxModels(executor=pool, threads=1), Stages(pool))
        photos = PhotoService(pipeline, PhotoLimits())
        videos = VideoService(pipeline, photos, VideoLimits(), threshold=THRESHOLD)
        return await _evaluate(_samples(data), videos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=DATA
    )
    args = parser.parse_args()
    np.seterr(all="ignore")
    rows = asyncio.run(_main(args.data_dir))
    summary = summarise(rows)
    command = ".venv/bin/python -m benchmarks.challenge_eval"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "challenge_eval.json").write_text(
        json.dumps({"command": command, **summary, "rows": rows}, indent=1))
    (RESULTS / "challenge_eval.md").write_text(_markdown(summary, rows, command))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
