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

SPLITS = ('train', 'valid', 'test', 'unlabeled')
# task-file keys whose relative paths are relative to the task file
PATH_KEYS = SPLITS + ('checkpoint_dir', 'config_path', 'checkpoint_path', 'dict_path', 'out', 'label_words')


# read before TensorFlow loads (pet_keras.commands parses the flags first); pet_keras.task runs the task
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
