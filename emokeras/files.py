"""Writing outputs safely.

Whole (a temporary name, renamed when complete), by one writer at a time (a lock beside the folder), and with a clear
error when the disk refuses a write.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import errno
import fcntl
import json
import os
import shutil
import socket
import sys


class OutputError(OSError):
    """An output could not be written (a full disk, a read-only folder); the message names the folder."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)  # one argument: str() is the message alone
        self.errno = code


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock; the message names it."""


def write_text(path: str, text: str) -> None:
    """Writes `text` so that a reader never sees half a file."""
    partial = os.path.join(os.path.dirname(path) or ".", "." + os.path.basename(path) + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, path)


def write_json(path: str, content) -> None:
    """Writes `content` as indented JSON with sorted keys (see `write_text`)."""
    write_text(path, json.dumps(content, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def reported_write_errors(folder: str, what: str, also=()):
    """Within the block, an OS error while writing becomes an `OutputError` naming `folder` and `what`.

    Nothing written in the block counts as complete (the caller's temporary names see to that).

    Args:
      folder: the folder being written, named in the error.
      what: what is being written, named in the error.
      also: other exception types that a writer raises for the same failures (TensorFlow's file system raises
        `tf.errors.ResourceExhaustedError` for a full disk; h5py raises OSError).
    """
    try:
        yield
    except OutputError:
        raise
    except (OSError, *also) as error:
        full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(error)
        reason = "the disk is full" if full else (getattr(error, "strerror", None) or str(error).splitlines()[0])
        raise OutputError(f"{folder}: could not write {what} ({reason}); nothing there is marked complete, so the "
                          "same command finishes the work once it can write",
                          errno.ENOSPC if full else getattr(error, "errno", None)) from None


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(first: str, second: str) -> bool:
    """Swaps two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_cwd = -100  # AT_FDCWD
    done = renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE)
    return done == 0


def replace_folder(new: str, target: str) -> None:
    """Puts the complete folder `new` at `target`, replacing what is there.

    A reader of `target` finds the old folder or the new one, whole: the two are swapped in one step where the system
    allows (Linux), else the old one is renamed aside first; the old one is removed only afterwards.
    """
    if not os.path.isdir(target):
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new)  # now the old folder
        return
    aside = os.path.join(os.path.dirname(target) or ".", "." + os.path.basename(target) + ".old")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(target, aside)
    os.replace(new, target)
    shutil.rmtree(aside)


def lock_path(folder: str) -> str:
    """The lock of `folder`: a file beside it, so replacing the folder keeps the lock."""
    folder = os.path.normpath(folder)
    return os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.lock")


@contextlib.contextmanager
def exclusive(folder: str, role: str = "", wait: bool = False):
    """Holds `folder`'s lock for the block: one writer per folder.

    The lock is an `flock` on a file beside the folder, so the kernel releases it when its holder ends, however it
    ends: a lock left by a killed process is free for the next command. The file says who holds it.

    Args:
      folder: the folder to hold.
      role: what the holder is, written before who it is (a distributed search's chief names its address there,
        so that its workers know it: `holder`).
      wait: wait for the holder to finish, rather than refuse.

    Raises:
      FolderInUse: another process holds it (and not `wait`), naming the process, its command and when it started.
    """
    path = lock_path(folder)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                raise FolderInUse(f"{folder} is in use by {holder}; wait for it to finish, or stop it") from None
            sys.stderr.write(f"waiting for {holder} to finish with {folder} ...\n")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        handle.write(f"{role + ': ' if role else ''}process {os.getpid()} on {socket.gethostname()} "
                     f"({' '.join(sys.argv) or 'python'}, since {started})\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock


def holder(folder: str) -> str | None:
    """Who holds `folder`'s lock (what its lock file says), or None if no process does."""
    path = lock_path(folder)
    if not os.path.isfile(path):
        return None
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
