"""The texts ``pet-keras predict`` reads: plain text (one per line), JSON lines or TSV.

Each example keeps its input row (every key of a JSON object, the named columns of a TSV
row, the field of a text line), which predict writes back with its prediction.
"""

import os

from pet_keras.data import Dataset, Example, read_jsonl, read_lines, read_tsv

FORMATS = {'.jsonl': 'jsonl', '.json': 'jsonl', '.tsv': 'tsv'}  # by extension; anything else is text


def input_format(path, given=None):
    return given or FORMATS.get(os.path.splitext(path)[1].lower(), 'text')


def text_examples(path, fields, given=None):
    if len(fields) != 1:
        raise ValueError(
            '%s: the model reads fields %s; plain text gives one per line: use --format jsonl or tsv'
            % (path, ', '.join(fields))
        )
    examples, skipped = [], 0
    for number, line in read_lines(path):
        if line.strip():
            text = {fields[0]: line.strip()}
            examples.append(Example(text, None, '%s:%d' % (path, number), text))
        else:
            skipped += 1
    return Dataset(examples, skipped, path)


def jsonl_examples(path, fields, given=None):
    """``given``: --fields, field=key pairs for keys not named as the fields."""
    keys = {name: (name, 'text') if len(fields) == 1 and name != 'text' else name for name in fields}
    pairs = [item.split('=', 1) for item in given.split(',')] if given else []
    if any(len(pair) != 2 or pair[0] not in fields for pair in pairs):
        raise ValueError(
            "--fields %s: expected field=key pairs for the model's fields %s, e.g. --fields %s=content"
            % (given, ', '.join(fields), fields[0])
        )
    keys.update(pairs)
    return read_jsonl(path, keys, labeled=False, keep_rows=True)


def tsv_examples(path, fields, given=None):
    """``given``: --fields, the columns in order (every named column is copied to the output)."""
    columns = given.split(',') if given else fields
    missing = [name for name in fields if name not in columns]
    if missing:
        raise ValueError("--fields %s: no column for the model's field %s" % (given, ', '.join(missing)))
    data = read_tsv(path, fields=columns, labeled=False)
    return Dataset(
        [Example({name: e.fields[name] for name in fields}, None, e.source, e.fields) for e in data], data.skipped
    )


READERS = {'text': text_examples, 'jsonl': jsonl_examples, 'tsv': tsv_examples}
