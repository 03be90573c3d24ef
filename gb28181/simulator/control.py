"""The simulator's control channel: one command per line, from stdin or a loopback TCP port (``--control``).

    power-off TARGET        the device goes silent (power loss: no REGISTER, no keepalive, no answers)
    power-on TARGET         power back: a new registration after the boot delay
    reboot TARGET           power cycle (as after TeleBoot): silence, then a new registration
    nat-move TARGET         the device's source port changes (NAT rebinding; TCP: a new connection)
    alarm TARGET [CHANNEL]  a motion alarm (NOTIFY to alarm subscribers, else a MESSAGE)
    vlost CHANNEL           a camera loses video (catalog subscribers get Event VLOST)
    video-ok CHANNEL        video is back (Event ON)
    status                  print the counts now
    quit                    stop and print the summary

TARGET is a device ID, ``#N`` (the N-th device, from 0) or ``all``. Parsing is pure; runtime.py applies commands.
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = {
    "power-off": (1, 1),
    "power-on": (1, 1),
    "reboot": (1, 1),
    "nat-move": (1, 1),
    "alarm": (1, 2),
    "vlost": (1, 1),
    "video-ok": (1, 1),
    "status": (0, 0),
    "quit": (0, 0),
    "help": (0, 0),
}
HELP = __doc__.split("\n\n")[1] if __doc__ else ""


class CommandError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...] = ()


def parse_command(line: str) -> Command | None:
    """One line -> a Command; None for a blank line or a comment. Raises CommandError saying what is wrong."""
    words = line.strip().split()
    if not words or words[0].startswith("#"):
        return None
    verb, args = words[0].lower(), tuple(words[1:])
    if verb not in VERBS:
        raise CommandError(f"unknown command {verb!r} (try: {', '.join(VERBS)})")
    lo, hi = VERBS[verb]
    if not lo <= len(args) <= hi:
        want = f"{lo}" if lo == hi else f"{lo}-{hi}"
        raise CommandError(f"{verb} takes {want} argument{'s' if hi != 1 else ''}, got {len(args)}")
    if verb in ("vlost", "video-ok") and not (args[0].isdigit() and len(args[0]) == 20):
        raise CommandError(f"{verb} needs a 20-digit channel ID, got {args[0]!r}")
    if verb == "alarm" and len(args) == 2 and not (args[1].isdigit() and len(args[1]) == 20):
        raise CommandError(f"alarm: channel must be a 20-digit ID, got {args[1]!r}")
    return Command(verb, args)


def select(target: str, ids: list[str]) -> list[int]:
    """Indexes of the devices a TARGET names (``all``, ``#N`` or an ID). Raises CommandError when none match."""
    if target == "all":
        return list(range(len(ids)))
    if target.startswith("#"):
        n = target[1:]
        if not n.isdigit() or int(n) >= len(ids):
            raise CommandError(f"no device {target} (there are {len(ids)})")
        return [int(n)]
    try:
        return [ids.index(target)]
    except ValueError:
        raise CommandError(f"no device {target!r}") from None
