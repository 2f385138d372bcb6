"""Claude's memory tool (`memory_20250818`) with its files stored in tiermem, per user.

It follows the SDK's reference backend (`BetaLocalFilesystemMemoryTool`): every path must
stay under /memories, `create` refuses an existing file, `str_replace` needs exactly one
match, `insert_line` must be within [0, lines], the /memories root can be neither deleted
nor renamed, `rename` refuses an existing destination, errors are `ToolError`s. The files
live in the session tier (durable, scoped to the user, erased with `forget_user`) and each
one is also a fact, so `Memory.search` and `context()` find what Claude wrote down.
"""

from __future__ import annotations

import posixpath
from typing import Any

from anthropic.lib.tools import BetaAbstractMemoryTool, ToolError

from tiermem import Memory
from tiermem._messages import check_id

ROOT = "/memories"
LINE_NUMBER_WIDTH = 6
MAX_FILE_CHARS = 1_000_000


def _size(n: int) -> str:
    for unit in ("B", "K", "M"):
        if n < 1024:
            return f"{n}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f}G"


class TiermemMemoryTool(BetaAbstractMemoryTool):
    """`BetaAbstractMemoryTool` backed by a tiermem `Memory`, for one user.

    Example:
        >>> tool = TiermemMemoryTool(mem, user_id="ana")
        >>> runner = client.beta.messages.tool_runner(model=..., max_tokens=1024, tools=[tool],
        ...                                           messages=[...], thread=False)
    """

    def __init__(self, memory: Memory, *, user_id: str, cache_control: Any = None):
        super().__init__(cache_control=cache_control)
        self.memory = memory
        self.user_id = check_id(user_id, "user_id")

    # -- paths --------------------------------------------------------------------------------
    @staticmethod
    def _path(path: str) -> str:
        if not isinstance(path, str) or not path.startswith(ROOT):
            raise ToolError(f"Path must start with /memories, got: {path}")
        normal = posixpath.normpath(path)
        if normal != ROOT and not normal.startswith(ROOT + "/") or "\x00" in path:
            raise ToolError(f"Path {path} would escape /memories directory")
        return normal

    def _files(self, prefix: str = "") -> list[Any]:
        return self.memory.session.memory_files(self.user_id, prefix)

    def _file(self, path: str) -> Any:
        row = self.memory.session.memory_file(self.user_id, path)
        if row is None:
            if path == ROOT or self._files(path):
                raise ToolError(f"The path {path} is not a file.")
            raise ToolError(f"The path {path} does not exist. Please provide a valid path.")
        return row

    def _write(self, path: str, content: str, fact_id: str | None) -> None:
        if len(content) > MAX_FILE_CHARS:
            raise ToolError(f"File {path} would exceed {MAX_FILE_CHARS:,} characters")
        fact = self.memory.writes.file_fact(self.user_id, path, content, fact_id)
        self.memory.session.put_memory_file(self.user_id, path, content, fact, self.memory.clock())

    # -- commands -----------------------------------------------------------------------------
    def view(self, command: Any) -> str:
        path = self._path(command.path)
        row = self.memory.session.memory_file(self.user_id, path)
        if row is None:
            files = self._files(path) if path != ROOT else self._files()
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
        lines = row.content.split("\n")
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
        if path == ROOT or self.memory.session.memory_file(self.user_id, path) is not None or self._files(path):
            raise ToolError(f"File {command.path} already exists")
        self._write(path, command.file_text, None)
        return f"File created successfully at: {command.path}"

    def str_replace(self, command: Any) -> str:
        path = self._path(command.path)
        row = self._file(path)
        count = row.content.count(command.old_str)
        if count == 0:
            raise ToolError(f"No replacement was performed, old_str `{command.old_str}` did not appear verbatim in "
                            f"{command.path}.")
        if count > 1:
            starts, at = [], row.content.find(command.old_str)
            while at != -1:
                starts.append(row.content[:at].count("\n") + 1)
                at = row.content.find(command.old_str, at + 1)
            raise ToolError(f"No replacement was performed. Multiple occurrences of old_str `{command.old_str}` in lines: "
                            f"{', '.join(map(str, starts))}. Please ensure it is unique")
        changed = row.content[:row.content.find(command.old_str)].count("\n")
        content = row.content.replace(command.old_str, command.new_str)
        self._write(path, content, row.fact_id)
        lines = content.split("\n")
        snippet = [f"{str(n).rjust(LINE_NUMBER_WIDTH)}\t{lines[n - 1]}"
                   for n in range(max(0, changed - 2) + 1, min(len(lines), changed + 3) + 1)]
        return "The memory file has been edited. Here is the snippet showing the change (with line numbers):\n" + \
            "\n".join(snippet)

    def insert(self, command: Any) -> str:
        path = self._path(command.path)
        row = self._file(path)
        lines = row.content.splitlines()
        if command.insert_line < 0 or command.insert_line > len(lines):
            raise ToolError(f"Invalid `insert_line` parameter: {command.insert_line}. "
                            f"It should be within the range [0, {len(lines)}].")
        lines.insert(command.insert_line, command.insert_text.rstrip("\n"))
        self._write(path, "\n".join(lines) + "\n", row.fact_id)
        return f"The file {command.path} has been edited."

    def delete(self, command: Any) -> str:
        path = self._path(command.path)
        if path == ROOT:
            raise ToolError("Cannot delete the /memories directory itself")
        rows = self._files(path)
        if not rows:
            raise ToolError(f"The path {command.path} does not exist")
        for row in rows:  # erased, not only hidden: the fact's text leaves the disk too
            if row.fact_id:
                self.memory.forget(row.fact_id, user_id=self.user_id)
        self.memory.session.delete_memory_files(self.user_id, [r.path for r in rows])
        return f"Successfully deleted {command.path}"

    def rename(self, command: Any) -> str:
        old, new = self._path(command.old_path), self._path(command.new_path)
        if old == ROOT:
            raise ToolError("Cannot rename the /memories directory itself")
        if new == ROOT or self._files(new):
            raise ToolError(f"The destination {command.new_path} already exists")
        rows = self._files(old)
        if not rows:
            raise ToolError(f"The path {command.old_path} does not exist")
        for row in rows:
            target = new + row.path[len(old):]
            self._write(target, row.content, row.fact_id)
        self.memory.session.delete_memory_files(self.user_id, [r.path for r in rows])
        return f"Successfully renamed {command.old_path} to {command.new_path}"

    def clear_all_memory(self) -> str:
        rows = self._files()
        for row in rows:
            if row.fact_id:
                self.memory.forget(row.fact_id, user_id=self.user_id)
        self.memory.session.delete_memory_files(self.user_id, [r.path for r in rows])
        return "All memory cleared"
