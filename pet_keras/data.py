"""Reading datasets into examples, with errors that name the file and line.

An example is ``Example(fields, label, source)``: ``fields`` maps the pattern's
field names (``text``, or ``a`` and ``b`` for pairs) to strings; ``label`` is a
label name (str) or None for unlabeled text; ``source`` is "file:line".
Rows whose text is empty or whitespace are skipped and counted (``skipped``
on the returned ``Dataset``), never passed on as empty inputs.
"""

import contextlib
import json
import random
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    fields: dict
    label: str = None
    source: str = ''
    row: dict = None  # the input row, every key kept, copied into its prediction (pet-keras predict)


class Dataset(list):
    """A list of examples, plus how many rows were skipped as empty and the file they came from."""

    def __init__(self, examples=(), skipped=0, path=None):
        super().__init__(examples)
        self.skipped, self.path = skipped, path


def _lines(binary):
    """A binary file's lines, each ended by LF, CRLF or a lone CR (old Mac files), without the ending.
    (A CR byte is never part of a UTF-8 multi-byte character.)"""
    for chunk in binary:
        chunk = chunk[:-2] if chunk.endswith(b'\r\n') else chunk.rstrip(b'\n')
        pieces = chunk.split(b'\r')
        yield from pieces[:-1] if len(pieces) > 1 and not pieces[-1] else pieces


def read_lines(path):
    """Yield (line number, line without its newline) of a UTF-8 file (``-``: standard input).

    A byte sequence that is not UTF-8 raises ValueError naming the file and
    line (files in GBK are common: convert them with ``iconv -f GBK -t UTF-8``).
    """
    with open(path, 'rb') if path != '-' else contextlib.nullcontext(sys.stdin.buffer) as f:
        for number, raw in enumerate(_lines(f), 1):
            try:
                line = raw.decode('utf-8')
            except UnicodeDecodeError as e:
                raise ValueError(
                    '%s:%d: not UTF-8 (byte 0x%02x at column %d); expected UTF-8 text '
                    '(convert with e.g. iconv -f GBK -t UTF-8)' % (path, number, raw[e.start], e.start + 1)
                ) from None
            if number == 1:
                line = line.lstrip('\ufeff')
            yield number, line


def read_tsv(path, label_names=None, fields=('text',), labeled=True):
    """Tab-separated rows: the ``fields``, then (when ``labeled``) the label.
    ``text<TAB>label`` is the sentiment format; ``fields=('a', 'b')`` reads
    sentence pairs ``a<TAB>b<TAB>label``. ``label_names`` maps the file's label
    values to names, e.g. {'0': 'negative', '1': 'positive'}. A single text
    field keeps any tabs inside it (the label is after the last tab); with
    several fields a row must have exactly one column per field (+ label).
    A row with any empty field is skipped."""
    columns = list(fields) + (['label'] if labeled else [])
    layout = '<TAB>'.join(columns)
    examples, skipped = [], 0
    for number, line in read_lines(path):
        if not line.strip():
            skipped += 1
            continue
        # a lone text field keeps its tabs: only the last one separates the label
        values = line.rsplit('\t', len(columns) - 1) if len(fields) == 1 else line.split('\t')
        if len(values) != len(columns):
            raise ValueError(
                '%s:%d: expected "%s", found %s'
                % (path, number, layout, '%d columns' % len(values) if len(values) > 1 else 'no tab')
            )
        label = values.pop().strip() if labeled else None
        if labeled and label_names is not None:
            if label not in label_names:
                raise ValueError(
                    '%s:%d: label %r is not one of %s (correct or delete the row)'
                    % (path, number, label, sorted(label_names))
                )
            label = label_names[label]
        texts = [value.strip() for value in values]
        if not all(texts):
            skipped += 1
            continue
        examples.append(Example(dict(zip(fields, texts)), label, '%s:%d' % (path, number)))
    return Dataset(examples, skipped, path)


def read_jsonl(path, text_keys, label_key=None, label_names=None, labeled=True, keep_rows=False):
    """JSON lines. ``text_keys`` maps field names to keys (the first key
    present is used), e.g. {'text': ('sentence', 'text')}. The label is
    ``label_key``'s value (tried in order when a tuple), mapped through
    ``label_names`` when given. With ``labeled=False`` labels are ignored.
    With ``keep_rows`` each example keeps its whole JSON object as ``row``.
    One loop over the rows with each check in the order a row is read, each its own
    ``file:line`` message: longer than 50 lines, kept whole to read as one."""
    examples, skipped = [], 0
    label_keys = (label_key,) if isinstance(label_key, str) else tuple(label_key or ())
    for number, line in read_lines(path):
        if not line.strip():
            skipped += 1
            continue
        where = '%s:%d' % (path, number)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(
                '%s: malformed JSON (%s at column %d; correct or delete the line)' % (where, e.msg, e.colno)
            ) from None
        except (ValueError, RecursionError) as e:  # e.g. an integer of more than 4300 digits, or nesting too deep
            raise ValueError('%s: malformed JSON (%s; correct or delete the line)' % (where, e)) from None
        if not isinstance(row, dict):
            raise ValueError('%s: expected a JSON object, found %s' % (where, type(row).__name__))
        fields = {}
        for name, keys in text_keys.items():
            keys = (keys,) if isinstance(keys, str) else keys
            value = next((row[k] for k in keys if k in row), None)
            if value is None:
                raise ValueError('%s: no %s field (expected one of %s)' % (where, name, ', '.join(keys)))
            fields[name] = str(value).strip()
        if not all(fields.values()):
            skipped += 1
            continue
        label = None
        if labeled:
            key = next((k for k in label_keys if k in row), None)
            if key is None:
                raise ValueError(
                    '%s: no label (expected the key %s; add it to the row)' % (where, ' or '.join(label_keys))
                )
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(
                    '%s: label %s is %s; expected a string or an integer (correct or delete the row)'
                    % (
                        where,
                        json.dumps(value, ensure_ascii=False)[:40],
                        'null' if value is None else type(value).__name__,
                    )
                )
            label = str(value)
            if label_names is not None:
                if label not in label_names:
                    raise ValueError(
                        '%s: label %r is not one of %s (correct or delete the row)'
                        % (where, label, sorted(label_names))
                    )
                label = label_names[label]
        examples.append(Example(fields, label, where, row if keep_rows else None))
    return Dataset(examples, skipped, path)


def split_labeled(examples, fraction, seed=None):
    """Split training examples into (labeled, unlabeled), ``fraction`` labeled.

    With ``seed=None`` the first rows are labeled, as in the reference scripts;
    with a seed, a seeded random choice of rows (the same seed, the same split).
    Unlabeled rows keep their text and lose their label.
    """
    if not 0 < fraction <= 1:
        raise ValueError('labeled fraction must be in (0, 1], got %r' % fraction)
    order = list(range(len(examples)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    count = max(1, int(len(examples) * fraction))
    labeled = [examples[i] for i in sorted(order[:count])]
    unlabeled = [Example(examples[i].fields, None, examples[i].source) for i in sorted(order[count:])]
    return labeled, unlabeled
