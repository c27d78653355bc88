"""What the subcommands print with: rich consoles that never turn user text into markup or
emoji, and `say` for the harness's progress messages (which a progress bar may take over)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

out = Console(emoji=False)  # user text (step, service, file names) is never turned into emoji
err = Console(stderr=True, emoji=False)

_say_console = err


def verbatim(text: str, style: str = "") -> Text:
    """User text as it is: no rich markup (`[/]`, `[red]`), no emoji codes (`:smile:`), and
    control characters (a file name with an escape sequence) shown escaped, never sent."""
    safe = "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)
    return Text(safe, style=style)


def line(console: Console, *parts: Text | str) -> None:
    """One line of parts, user text verbatim."""
    joined = Text()
    for part in parts:
        joined.append(part if isinstance(part, Text) else verbatim(part))
    console.print(joined, highlight=False, soft_wrap=True, emoji=False, markup=False)


def say(msg: str) -> None:
    line(_say_console, verbatim(msg, "dim"))


def say_to(console: Console | None) -> None:
    """Send `say` to `console` (a progress bar's), or back to stderr with None."""
    global _say_console
    _say_console = console if console is not None else err


def error(msg: str | None) -> None:
    if msg:
        line(err, Text("error: ", style="red"), msg)
