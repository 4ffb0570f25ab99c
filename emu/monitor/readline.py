"""QEMU's monitor line editor (util/readline.c), byte for byte.

Every key redraws the line the way QEMU does (``ESC [ D`` back to the start of the old
text, the new text, ``ESC [ K``), so a terminal shows the same bytes from emu and QEMU.
Keys: printable characters insert; Backspace/DEL, ^D and ``ESC [ 3 ~`` delete; ^A / Home and
^E / End move to the ends; the arrows move and walk the history (64 entries, duplicates
moved to the end); ^W deletes a word; Enter runs the line. Tab completes command names.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_CMDS = 64
CMD_BUF_SIZE = 4095
_NORM, _ESC, _CSI, _SS3 = range(4)


class ReadLine:
    """One editing session: ``write`` prints to the terminal, ``on_line`` runs a line,
    ``complete`` lists the completions of a partial line (start of the word, candidates)."""

    def __init__(self, write: Callable[[str], None], on_line: Callable[[str], None],
                 complete: Callable[[str], tuple[int, list[str]]] | None = None,
                 prompt: str = "(qemu) ") -> None:
        self.write = write
        self.on_line = on_line
        self.complete = complete
        self.prompt = prompt
        self.buf: list[str] = []
        self.index = 0
        self.last: list[str] = []
        self.last_index = 0
        self.esc_state = _NORM
        self.esc_param = 0
        self.history: list[str] = []
        self.hist_entry = -1

    def show_prompt(self) -> None:
        """readline_show_prompt."""
        self.write(self.prompt)
        self.last, self.last_index = [], 0
        self.esc_state = _NORM

    def restart(self) -> None:
        """readline_restart: forget the line being edited."""
        self.buf, self.index = [], 0

    def _update(self) -> None:
        out = []
        if self.buf != self.last:
            out.append("\033[D" * self.last_index)
            out.append("".join(self.buf) + "\033[K")
            self.last = list(self.buf)
            self.last_index = len(self.buf)
        if self.index != self.last_index:
            delta = self.index - self.last_index
            out.append("\033[C" * delta if delta > 0 else "\033[D" * -delta)
            self.last_index = self.index
        if out:
            self.write("".join(out))

    def _insert(self, ch: str) -> None:
        if self.index < CMD_BUF_SIZE:
            self.buf.insert(self.index, ch)
            self.index += 1

    def _delete(self) -> None:
        if self.index < len(self.buf):
            del self.buf[self.index]

    def _backword(self) -> None:
        if self.index == 0:
            return
        start = self.index - 1
        while start > 0 and self.buf[start].isspace():
            start -= 1
        while start > 0:
            if self.buf[start].isspace():
                start += 1
                break
            start -= 1
        del self.buf[start : self.index]
        self.index = start

    def _up(self) -> None:
        if self.hist_entry == 0:
            return
        if self.hist_entry == -1:
            self.hist_entry = len(self.history)
        self.hist_entry -= 1
        if self.hist_entry >= 0:
            self.buf = list(self.history[self.hist_entry])
            self.index = len(self.buf)

    def _down(self) -> None:
        if self.hist_entry == -1:
            return
        self.hist_entry += 1
        if self.hist_entry < len(self.history):
            self.buf = list(self.history[self.hist_entry])
        else:
            self.buf = []
            self.hist_entry = -1
        self.index = len(self.buf)

    def _hist_add(self, line: str) -> None:
        if not line:
            return
        if line in self.history:
            self.history.remove(line)
        elif len(self.history) == MAX_CMDS:
            self.history.pop(0)
        self.history.append(line)
        self.hist_entry = -1

    def _completion(self) -> None:
        if self.complete is None:
            return
        start, found = self.complete("".join(self.buf[: self.index]))
        if not found:
            return
        typed = self.index - start
        if len(found) == 1:
            for ch in found[0][typed:]:
                self._insert(ch)
            self._insert(" ")
            return
        self.write("\n")
        prefix = found[0]
        for word in found[1:]:
            while not word.startswith(prefix):
                prefix = prefix[:-1]
        for ch in prefix[typed:]:
            self._insert(ch)
        width = min(max(max(len(w) for w in found) + 2, 10), 80)
        cols = 80 // width
        for i, word in enumerate(found):
            self.write(word.ljust(width))
            if (i + 1) % cols == 0 or i == len(found) - 1:
                self.write("\n")
        self.show_prompt()

    def handle_byte(self, ch: int) -> None:
        """readline_handle_byte."""
        if self.esc_state == _NORM:
            if ch == 1:
                self.index = 0
            elif ch == 4:
                self._delete()
            elif ch == 5:
                self.index = len(self.buf)
            elif ch == 9:
                self._completion()
            elif ch in (10, 13):
                line = "".join(self.buf)
                self._hist_add(line)
                self.write("\n")
                self.buf, self.index, self.last, self.last_index = [], 0, [], 0
                self.on_line(line)
            elif ch == 23:
                self._backword()
            elif ch == 27:
                self.esc_state = _ESC
            elif ch in (127, 8):
                if self.index > 0:
                    self.index -= 1
                    self._delete()
            elif ch == 155:
                self.esc_state = _CSI
            elif ch >= 32:
                self._insert(chr(ch))
        elif self.esc_state == _ESC:
            if ch == ord("["):
                self.esc_state, self.esc_param = _CSI, 0
            elif ch == ord("O"):
                self.esc_state, self.esc_param = _SS3, 0
            else:
                self.esc_state = _NORM
        elif self.esc_state == _CSI:
            c = chr(ch)
            if c.isdigit():
                self.esc_param = self.esc_param * 10 + int(c)
                self._update()
                return
            if c in "AF":
                self._up()
            elif c in "BE":
                self._down()
            elif c == "D":
                self.index = max(self.index - 1, 0)
            elif c == "C":
                self.index = min(self.index + 1, len(self.buf))
            elif c == "~":
                if self.esc_param == 1:
                    self.index = 0
                elif self.esc_param == 3:
                    self._delete()
                elif self.esc_param == 4:
                    self.index = len(self.buf)
            self.esc_state = _NORM
        else:  # SS3
            if ch == ord("F"):
                self.index = len(self.buf)
            elif ch == ord("H"):
                self.index = 0
            self.esc_state = _NORM
        self._update()
