"""Files: the one atomic writer every file of the library goes through, the
JSON reader, checksums and files shipped inside packages.

A file is written to a temporary name beside it, flushed to disk and renamed
over the target: a crash or Ctrl-C leaves the previous file or the new one,
never half of either.
"""

import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import shutil

TEMPORARY = '.tmp-%d-%s'  # a writer's temporary file: its process id, the target's name


def temporary_path(path):
    """Where this process writes ``path``'s new content before renaming it (``remove_temporaries``)."""
    return os.path.join(os.path.dirname(path) or '.', TEMPORARY % (os.getpid(), os.path.basename(path)))


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path to write ``path``'s new content to (by any writer, e.g.
    Keras' save_weights); on success it is synced and renamed to ``path``
    (if the writer wrote nothing, ``path`` is left as it was), on error removed.
    A full disk, whoever the writer, is an OSError naming ``path``."""
    tmp = temporary_path(path)
    try:
        try:
            yield tmp
        except Exception as e:
            if not is_disk_full(e):
                raise
            raise OSError(errno.ENOSPC, 'No space left on device (nothing written; free some space)', path) from e
        if not os.path.exists(tmp):
            return
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def refuse_overwriting_inputs(output, flag, inputs):
    """Refuse an output path that is, contains or lies inside anything the command reads:
    ``inputs`` maps each input's flag to its path (None and '-' for stdin are skipped)."""
    target = os.path.realpath(output)
    for input_flag, path in inputs.items():
        if path is None or path == '-':
            continue
        source = os.path.realpath(path)
        if target == source or _inside(source, target) or _inside(target, source):
            how = 'is' if target == source else 'contains' if _inside(source, target) else 'lies inside'
            raise ValueError(
                '%s %s %s %s %s, which this command reads: choose an output outside what it reads'
                % (flag, output, how, input_flag, path)
            )


def _inside(path, folder):
    return os.path.commonpath([path, folder]) == folder and path != folder


def remove_temporaries(folder, pid):
    """Remove the temporary files process ``pid`` left in ``folder`` (it was killed mid-write)."""
    prefix = TEMPORARY % (pid, '')
    for name in os.listdir(folder):
        if name.startswith(prefix):
            path = os.path.join(folder, name)
            shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


@contextlib.contextmanager
def atomic_folder(path):
    """A temporary folder beside ``path`` to write its new content into; on success whatever
    was at ``path`` (the caller has checked it may go) is replaced by it, on error it is removed
    and ``path`` left as it was."""
    path = path.rstrip(os.sep) or path
    tmp = temporary_path(path)
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def is_disk_full(error):
    """Whether ``error`` is a full disk: Python's OSError, or a library's error (TensorFlow's
    ResourceExhaustedError from a checkpoint or h5 writer) that says so."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return 'No space left on device' in str(error)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)


def write_json(path, value):
    """Strict JSON (NaN refused), UTF-8, indented."""
    write_text(path, json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False))


def read_json(path):
    """A JSON file's value; invalid JSON is named with file:line."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError('%s:%d: not valid JSON (%s)' % (path, e.lineno, e.msg)) from None


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def package_file(package, *parts):
    """Path of a data file shipped inside an installed package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('package %r is not installed (pip install -r requirements.txt)' % package)
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)
