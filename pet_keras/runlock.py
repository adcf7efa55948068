"""One run per output folder: an advisory lock on ``<folder>/.run.lock``.

Two runs writing one folder at once overwrite each other's checkpoints and
leave results that describe weights the folder does not hold. ``fit_pet`` and
``fit_classifier`` hold the lock (``fcntl.flock``) while they run, so a second
run is refused at once, naming the holder's process id. The kernel drops the
lock when its process dies, however it dies: a lock file left by a killed run
is taken over, with a note, and the temporary files the run was writing are removed.
"""

import contextlib
import fcntl
import os
import sys

from pet_keras.io import remove_temporaries

LOCK = '.run.lock'
_held = set()  # folders (real paths) this process holds: the lock is re-entrant within a process


class FolderLocked(OSError):
    """Another live process holds the folder's run lock."""


def _refuse(folder, lock_file):
    lock_file.seek(0)
    holder = lock_file.read().strip() or '?'
    lock_file.close()
    raise FolderLocked(
        '%s: another run (process %s) is writing there (wait for it to end, or use another --out)' % (folder, holder)
    )


def check(folder):
    """Refuse ``folder`` when another process holds its lock, without taking it (a start-up check:
    the run takes the lock when it starts writing)."""
    path = os.path.join(folder, LOCK)
    if os.path.realpath(folder) in _held or not os.path.isfile(path):
        return
    with open(path, 'r+') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _refuse(folder, f)


def _acquire(folder):
    path = os.path.join(folder, LOCK)
    while True:
        f = open(path, 'a+')
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _refuse(folder, f)
        if os.path.exists(path) and os.path.samestat(os.fstat(f.fileno()), os.stat(path)):
            break
        f.close()  # the holder removed that file between our open and flock: lock the new one
    f.seek(0)
    stale = f.read().strip()
    if stale:
        print(
            '%s: taking over the lock of process %s, which ended without releasing it' % (folder, stale),
            file=sys.stderr,
        )
        if stale.isdigit():
            remove_temporaries(folder, int(stale))  # what it was writing when it died
    f.seek(0)
    f.truncate()
    f.write('%d\n' % os.getpid())
    f.flush()
    return f


@contextlib.contextmanager
def locked(folder, hold=True):
    """Hold ``folder``'s run lock for the block (the folder is created if missing, and removed again
    if it is still empty at the end, so a refused run leaves nothing). ``hold=False``: only create
    the folder (a multi-worker worker that does not write it)."""
    key = os.path.realpath(folder)
    if not hold or key in _held:
        os.makedirs(folder, exist_ok=True)
        yield
        return
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    lock_file = _acquire(folder)
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, LOCK))  # before the lock goes: no one locks a file about to vanish
        lock_file.close()
        if created and not os.listdir(folder):
            os.rmdir(folder)
