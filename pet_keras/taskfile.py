"""Any classification task from files and flags: ``pet-keras train`` and ``pet-keras label-words``.

    pet-keras train --train train.jsonl --valid dev.jsonl --test test.jsonl \\
        --pattern '这是一篇____的文章。{content}' --label-field label_des --mode few-shot
    pet-keras train --task task.json --steps 200      # the same keys in a JSON file; flags override it
    pet-keras label-words --train train.jsonl --pattern '这是一篇____的文章。{content}' --out words.json

Files are JSON lines, or TSV whose columns ``--columns`` names, the label
column last (a file is read as TSV when --columns is given or its extension
is .tsv, so sentiment.train.data-style files work too). The pattern's ``{fields}`` are the data's keys
(or column names); the label is the string of ``--label-field``'s value.
Labels that are words themselves (体育, 社区服务) are their own label words;
``--label-words`` gives words for all labels or for some, the others keeping
their names. The labels keep the order of ``--label-words`` when it names
them all, else the order they first appear in train, valid, test. The run
folder is fit_pet's (or fit_classifier's): ``pet-keras predict`` reads it.
"""

import difflib
import json
import os

from pet_keras.data import Dataset, Example, read_jsonl, read_tsv

SPLITS = ('train', 'valid', 'test', 'unlabeled')
# task-file keys whose relative paths are relative to the task file
PATH_KEYS = SPLITS + ('checkpoint_dir', 'config_path', 'checkpoint_path', 'dict_path', 'out', 'label_words')


# read before TensorFlow loads (pet_keras.commands parses the flags first); pet_keras.runner runs the task
def task_file_flags(path, allowed):
    """The command-line flags a ``--task`` file stands for: put before the
    flags given, they are overridden by them. ``allowed``: the long flags the
    command takes (a key outside them, --help or --task is refused naming the file)."""
    try:
        with open(path, encoding='utf-8') as f:
            task = json.load(f)
    except OSError as e:
        raise FileNotFoundError('--task %s: %s' % (path, e.strerror)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError('--task %s: not a JSON file (%s)' % (path, e)) from None
    if not isinstance(task, dict):
        raise ValueError('--task %s: expected a JSON object of flags, found %s' % (path, type(task).__name__))
    base = os.path.dirname(os.path.abspath(path))
    flags = []
    for key, value in task.items():
        flag = '--' + str(key).replace('_', '-')
        if key == 'task':
            raise ValueError('--task %s: a task file cannot name another' % path)
        settable = sorted(set(allowed) - {'--help', '--task'})
        if flag not in settable:
            close = difflib.get_close_matches(flag, settable, n=1, cutoff=0.75)
            raise ValueError(
                '--task %s: unknown key %s%s; a task file holds the flags of the command (e.g. "train", '
                '"pattern", "label_words")'
                % (
                    path,
                    json.dumps(key, ensure_ascii=False),
                    (' (did you mean "%s"?)' % close[0][2:].replace('-', '_') if close else ''),
                )
            )
        if isinstance(value, bool):
            flags += [flag] if value else []
            continue
        if key == 'pattern' and isinstance(value, list):  # several patterns: full PET
            flags += ['--pattern=%s' % template for template in value]
            continue
        if key == 'label_words' and isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        elif key == 'columns' and isinstance(value, list):
            if not all(isinstance(name, str) for name in value):
                raise ValueError(
                    '%s: "columns" is %s; expected a list of column names (strings), the label last'
                    % (path, json.dumps(value, ensure_ascii=False))
                )
            value = ','.join(value)
        elif (
            key in PATH_KEYS
            and isinstance(value, str)
            and (key != 'label_words' or os.path.isfile(os.path.join(base, value)))
        ):
            value = os.path.normpath(os.path.join(base, value))
        if value is not None:
            flags.append('%s=%s' % (flag, value))
    return flags


def read_split(path, fields, columns, label_field, labeled=True):
    """One file's examples with just the pattern's ``fields``: JSON lines, or TSV named by ``columns``."""
    if columns is not None or path.lower().endswith('.tsv'):
        if columns is None:
            raise ValueError(
                '%s: a TSV file needs --columns naming its columns, e.g. --columns %s'
                % (path, ','.join(fields + [label_field]))
            )
        given, columns = columns, [name.strip() for name in columns.split(',')]  # 'text, label' means text,label
        if not all(columns):
            raise ValueError(
                '--columns %r: an empty column name; expected names separated by commas, the label last, e.g. '
                '--columns %s' % (given, ','.join(fields + [label_field]))
            )
        texts = [name for name in columns if name != label_field]
        if labeled and columns[-1] != label_field:
            raise ValueError('--columns %s: the label column %s must be the last' % (','.join(columns), label_field))
        missing = [name for name in fields if name not in texts]
        if missing:
            raise ValueError("--columns %s: no column for the pattern's {%s}" % (','.join(columns), missing[0]))
        data = read_tsv(path, fields=texts, labeled=labeled)
    else:
        data = read_jsonl(path, {name: name for name in fields}, label_field, labeled=labeled)
    return Dataset(
        [Example({name: e.fields[name] for name in fields}, e.label, e.source) for e in data], data.skipped, path
    )


def read_task_files(files, fields, columns=None, label_field='label'):
    """{split: Dataset} of ``files`` ({split: path}, splits of ``SPLITS``), printing what was
    read and skipped."""
    data = {}
    for split, path in files.items():
        data[split] = read_split(path, fields, columns, label_field, labeled=split != 'unlabeled')
        print(
            '%s %s: %d examples%s'
            % (
                split,
                path,
                len(data[split]),
                ', %d rows skipped (blank, or a field of the pattern empty)' % data[split].skipped
                if data[split].skipped
                else '',
            )
        )
    return data


def task_labels(data, words):
    """The labels: ``words``' order when it names every label of the data,
    else the order of first appearance in train, valid, test, then
    ``words``' other labels (absent from the data, e.g. few-shot)."""
    seen = list(dict.fromkeys(e.label for split in ('train', 'valid', 'test') for e in data.get(split, ())))
    if all(label in words for label in seen):
        return list(words)
    return seen + [label for label in words if label not in seen]
