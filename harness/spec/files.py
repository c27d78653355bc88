"""Files a topology names, looked at without ever hanging, crashing or reading without bound.

`probe` says what a path is (a regular file, a directory, missing, or something that is no
file: a FIFO, a device, a socket) without opening it; `read_bounded` reads a regular file of at
most `limit` bytes. A FIFO is refused before it is opened (opening one blocks until a writer
comes), `/dev/zero` before it is read, and names too long for the file system (`OSError: File
name too long`) become a problem with a fix, like every other failure here.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

PATH_MAX = 4096  # Linux: a whole path
NAME_MAX = 255  # Linux: one component
MAX_TOPOLOGY_BYTES = 256 * 1024  # a topology is a few KB; ha.yaml is under 3 KB
MAX_USER_FILE_BYTES = 1024 * 1024  # a config file or template a service is given


class FileProblem(Exception):
    """Why a path cannot be used; `message` is 'problem (fix)'."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def path_problem(text: str) -> str | None:
    """A path as written that no file system takes: empty, a NUL byte, or too long."""
    if not text:
        return "an empty path (give a file's path, relative to the topology file)"
    if "\x00" in text:
        return "the path contains a NUL byte (remove it)"
    if len(text.encode("utf-8", "surrogatepass")) > PATH_MAX:
        return f"the path is longer than {PATH_MAX} bytes (use a shorter path)"
    for part in text.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            shown = part[:20] + "..."
            return (
                f"the path component '{shown}' is longer than {NAME_MAX} bytes, more than a "
                "file name can be (use a shorter name)"
            )
    return None


def _what(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def probe(path: Path) -> str:
    """'file', 'dir', 'missing', or what else it is ('a named pipe (FIFO)', 'a device', ...).
    Raises FileProblem for a path the system refuses (too long, a loop, no permission)."""
    problem = path_problem(str(path))
    if problem is not None:
        raise FileProblem(problem)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise FileProblem(
                "the path is too long for the file system (use a shorter path)"
            ) from None
        if exc.errno == errno.ELOOP:
            raise FileProblem("the path is a loop of symbolic links (fix the link)") from None
        if exc.errno == errno.EACCES:
            raise FileProblem("permission denied (make it readable)") from None
        raise FileProblem(
            f"cannot look at it: {exc.strerror or exc} (check the path and permissions)"
        ) from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return _what(mode)


def is_php_app(root: Path) -> bool:
    """Whether the directory `root` holds a PHP app: a regular public/index.php or index.php."""
    for entry in ("public/index.php", "index.php"):
        try:
            if probe(root / entry) == "file":
                return True
        except FileProblem:
            continue
    return False


def read_bounded(path: Path, limit: int, what: str = "file", fix: str = "") -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or FileProblem saying why not.
    Never blocks on a FIFO and never reads more than `limit` + 1 bytes."""
    kind = probe(path)
    if kind == "missing":
        raise FileProblem("not found (check the path)")
    if kind != "file":
        raise FileProblem(f"it is {_article(kind)}, not a {what} (give the path of a regular file)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise FileProblem(
            f"cannot read: {exc.strerror or exc} (check the path and permissions)"
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # replaced between the stat and the open
            raise FileProblem(
                f"it is {_article(_what(mode))}, not a {what} (give the path of a regular file)"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem(
            f"cannot read: {exc.strerror or exc} (check the path and permissions)"
        ) from None
    finally:
        os.close(fd)
    if size > limit:
        try:
            total = os.stat(path).st_size
        except OSError:
            total = size
        more = f"{total:,} bytes" if total > limit else f"more than {limit:,} bytes"
        raise FileProblem(
            f"the {what} is {more}; at most {limit:,} are read"
            + (f" ({fix})" if fix else " (use a smaller file)")
        )
    return b"".join(chunks)


def _article(kind: str) -> str:
    return kind if kind.startswith(("a ", "an ", "not ")) else f"a {kind}"
