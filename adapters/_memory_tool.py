"""Claude's memory tool (`memory_20250818`) with its files stored in tiermem, per user.

A translator from the tool's commands to the memory's file calls (`files`, `write_file`,
`delete_files` of `tiermem.MemoryAPI`), so it works in-process and over a served home. It
follows the SDK's reference backend (`BetaLocalFilesystemMemoryTool`): every path must stay
under /memories, `create` is exclusive, `str_replace` needs exactly one match, lines split
on LF only, `insert_line` must be within [0, lines], the /memories root can be neither
deleted nor renamed, `rename` refuses an existing destination (and a move into itself),
errors are `ToolError`s. Every edit is a compare-and-set on the file's version, retried
when another writer came first: concurrent edits all survive.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable
from typing import Any

from anthropic.lib.tools import BetaAbstractMemoryTool, ToolError

from tiermem import InvalidInput, MemoryAPI, MemoryFile, WriteConflict, check_id

ROOT = "/memories"
LINE_NUMBER_WIDTH = 6
EDIT_ATTEMPTS = 50  # compare-and-set retries of one edit against other writers


def _size(n: int) -> str:
    for unit in ("B", "K", "M"):
        if n < 1024:
            return f"{n}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f}G"


def _lines(content: str) -> list[str]:
    """Split on LF only (a CR or U+2028 in a line stays), without the empty tail a final newline leaves."""
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class TiermemMemoryTool(BetaAbstractMemoryTool):
    """`BetaAbstractMemoryTool` backed by a tiermem memory (any `MemoryAPI`), for one user.

    Example:
        >>> tool = TiermemMemoryTool(mem, user_id="ana")
        >>> runner = client.beta.messages.tool_runner(model=..., max_tokens=1024, tools=[tool],
        ...                                           messages=[...], thread=False)
    """

    def __init__(self, memory: MemoryAPI, *, user_id: str, cache_control: Any = None):
        super().__init__(cache_control=cache_control)
        self.memory = memory
        self.user_id = check_id(user_id, "user_id")

    # -- paths and files ----------------------------------------------------------------------
    @staticmethod
    def _path(path: str) -> str:
        if not isinstance(path, str) or not path.startswith(ROOT):
            raise ToolError(f"Path must start with /memories, got: {path}")
        normal = posixpath.normpath(path)
        if normal != ROOT and not normal.startswith(ROOT + "/") or "\x00" in path:
            raise ToolError(f"Path {path} would escape /memories directory")
        return normal

    def _files(self, prefix: str = "") -> list[MemoryFile]:
        return self._do(lambda: self.memory.files(user_id=self.user_id, prefix=prefix))

    def _file(self, path: str) -> MemoryFile:
        found = [f for f in self._files(path) if f.path == path]
        if not found:
            if path == ROOT or self._files(path):
                raise ToolError(f"The path {path} is not a file.")
            raise ToolError(f"The path {path} does not exist. Please provide a valid path.")
        return found[0]

    @staticmethod
    def _do(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except InvalidInput as exc:
            raise ToolError(str(exc)) from None

    def _edit(self, path: str, change: Callable[[str], str]) -> str:
        """Read, change, write over the version read; again when another writer came first."""
        for _ in range(EDIT_ATTEMPTS):
            current = self._file(path)
            content = change(current.content)
            try:
                self._do(functools.partial(self.memory.write_file, path, content, user_id=self.user_id,
                                           if_version=current.version))
                return content
            except WriteConflict:
                continue
        raise ToolError(f"{path} kept changing while it was edited; try again")

    # -- commands -----------------------------------------------------------------------------
    def view(self, command: Any) -> str:
        path = self._path(command.path)
        files = self._files(path if path != ROOT else "")
        exact = [f for f in files if f.path == path]
        if not exact:
            if path != ROOT and not files:
                raise ToolError(f"The path {command.path} does not exist. Please provide a valid path.")
            entries: dict[str, int] = {}
            for f in files:
                parts = f.path[len(path):].strip("/").split("/")
                for depth in range(1, min(len(parts), 2) + 1):
                    name = "/".join(parts[:depth]) + ("/" if depth < len(parts) else "")
                    entries[name] = entries.get(name, 0) + (len(f.content.encode()) if depth == len(parts) else 0)
            lines = [f"{_size(sum(len(f.content.encode()) for f in files))}\t{path}"]
            lines += [f"{_size(size)}\t{path}/{name}" for name, size in sorted(entries.items())]
            return (f"Here're the files and directories up to 2 levels deep in {path}, excluding hidden items:\n"
                    + "\n".join(lines))
        lines = exact[0].content.split("\n")
        start = 1
        view_range = getattr(command, "view_range", None)
        if view_range and len(view_range) == 2:
            first = max(1, view_range[0]) - 1
            last = len(lines) if view_range[1] == -1 else view_range[1]
            lines, start = lines[first:last], first + 1
        numbered = [f"{str(i + start).rjust(LINE_NUMBER_WIDTH)}\t{line}" for i, line in enumerate(lines)]
        return f"Here's the content of {path} with line numbers:\n" + "\n".join(numbered)

    def create(self, command: Any) -> str:
        path = self._path(command.path)
        if path == ROOT:
            raise ToolError(f"File {command.path} already exists")
        try:
            self._do(lambda: self.memory.write_file(path, command.file_text, user_id=self.user_id, if_version=0))
        except WriteConflict as exc:
            raise ToolError(f"File {command.path} already exists" if "already exists" in str(exc) else str(exc)) from None
        return f"File created successfully at: {command.path}"

    def str_replace(self, command: Any) -> str:
        path = self._path(command.path)
        changed_line = 0

        def replace(content: str) -> str:
            nonlocal changed_line
            count = content.count(command.old_str)
            if count == 0:
                raise ToolError(f"No replacement was performed, old_str `{command.old_str}` did not appear verbatim in "
                                f"{command.path}.")
            if count > 1:
                starts, at = [], content.find(command.old_str)
                while at != -1:
                    starts.append(content[:at].count("\n") + 1)
                    at = content.find(command.old_str, at + 1)
                raise ToolError(f"No replacement was performed. Multiple occurrences of old_str `{command.old_str}` in "
                                f"lines: {', '.join(map(str, starts))}. Please ensure it is unique")
            changed_line = content[:content.find(command.old_str)].count("\n")
            return content.replace(command.old_str, command.new_str)

        lines = self._edit(path, replace).split("\n")
        snippet = [f"{str(n).rjust(LINE_NUMBER_WIDTH)}\t{lines[n - 1]}"
                   for n in range(max(0, changed_line - 2) + 1, min(len(lines), changed_line + 3) + 1)]
        return "The memory file has been edited. Here is the snippet showing the change (with line numbers):\n" + \
            "\n".join(snippet)

    def insert(self, command: Any) -> str:
        path = self._path(command.path)

        def insert(content: str) -> str:
            lines = _lines(content)
            if command.insert_line < 0 or command.insert_line > len(lines):
                raise ToolError(f"Invalid `insert_line` parameter: {command.insert_line}. "
                                f"It should be within the range [0, {len(lines)}].")
            lines.insert(command.insert_line, command.insert_text.rstrip("\n"))
            joined = "\n".join(lines)
            return joined if joined.endswith("\n") else joined + "\n"

        self._edit(path, insert)
        return f"The file {command.path} has been edited."

    def delete(self, command: Any) -> str:
        path = self._path(command.path)
        if path == ROOT:
            raise ToolError("Cannot delete the /memories directory itself")
        files = self._files(path)
        if not files:
            raise ToolError(f"The path {command.path} does not exist")
        # erased, not only hidden: the files' facts leave every tier with them
        self.memory.delete_files([f.path for f in files], user_id=self.user_id)
        return f"Successfully deleted {command.path}"

    def rename(self, command: Any) -> str:
        old, new = self._path(command.old_path), self._path(command.new_path)
        if old == ROOT:
            raise ToolError("Cannot rename the /memories directory itself")
        if new == old or new.startswith(old + "/"):
            raise ToolError(f"Cannot move {command.old_path} into itself ({command.new_path})")
        if new == ROOT or self._files(new):
            raise ToolError(f"The destination {command.new_path} already exists")
        files = self._files(old)
        if not files:
            raise ToolError(f"The path {command.old_path} does not exist")
        for f in files:
            try:
                self._do(functools.partial(self.memory.write_file, new + f.path[len(old):], f.content,
                                           user_id=self.user_id, if_version=0))
            except WriteConflict as exc:
                raise ToolError(f"The destination {command.new_path} cannot be written: {exc}") from None
        self.memory.delete_files([f.path for f in files], user_id=self.user_id)
        return f"Successfully renamed {command.old_path} to {command.new_path}"

    def clear_all_memory(self) -> str:
        files = self._files()
        if files:
            self.memory.delete_files([f.path for f in files], user_id=self.user_id)
        return "All memory cleared"
