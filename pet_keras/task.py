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
from collections import namedtuple

from pet_keras import cli, startup
from pet_keras.batching import PetDataGenerator
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.data import Dataset, Example, read_jsonl, read_tsv
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import Verbalizer
from pet_keras.train import fit_pet

SPLITS = ('train', 'valid', 'test', 'unlabeled')
# task-file keys whose relative paths are relative to the task file
PATH_KEYS = SPLITS + ('checkpoint_dir', 'config_path', 'checkpoint_path', 'dict_path', 'out', 'label_words')


def task_flags(path, allowed):
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


def read_data(args, fields, splits=SPLITS):
    """{split: Dataset} of the files given, printing what was read and skipped."""
    data = {}
    for split in splits:
        path = getattr(args, split)
        if path is None:
            continue
        data[split] = read_split(path, fields, args.columns, args.label_field, labeled=split != 'unlabeled')
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


def task_verbalizer(labels, words, tokenizer, aggregation='sum', length_norm=False):
    """The ``Verbalizer`` of ``words`` (label → words, maybe for some labels
    only): a label without words is its own word, if the vocabulary spells it whole (no
    word pieces, not a bare number)."""
    unspellable = {}
    for label in labels:
        ids = tokenizer.encode(label)[0][1:-1]
        tokens = tokenizer.ids_to_tokens(ids)
        # spelled in word pieces ('n ##e ##g …') or a bare number ('0', '1'): not a word the MLM could predict
        pieces = any(t.startswith('##') for t in tokens) or label.strip().isdigit()
        if label not in words and (not ids or tokenizer._token_unk_id in ids or pieces):
            unspellable[label] = ' '.join(tokens)
    if unspellable:
        raise ValueError(
            'label %s: not a word the vocabulary spells whole, so not its own label word; give '
            "--label-words for it, e.g. --label-words '%s'"
            % (
                ', '.join('%r (tokens %s)' % item for item in unspellable.items()),
                json.dumps({label: ['…'] for label in unspellable}, ensure_ascii=False),
            )
        )
    try:
        return Verbalizer({label: words.get(label, label) for label in labels}, aggregation, length_norm)
    except ValueError as e:
        raise ValueError('--label-words: %s' % e) from None


def settings(args):
    """The flags as fit_pet records them (results.json, run.json)."""
    return {key: value for key, value in vars(args).items() if key not in ('run', 'command')}


Checkpoint = namedtuple('Checkpoint', 'config_path checkpoint_path dict_path tokenizer')


def load_checkpoint(args):
    """The ``Checkpoint`` (config_path, checkpoint_path, dict_path, tokenizer) of the checkpoint flags."""
    config_path, checkpoint_path, dict_path = startup.checkpoint_paths(args)
    return Checkpoint(
        config_path, checkpoint_path, dict_path, load_tokenizer(dict_path, load_config(config_path), config_path)
    )


def build_checkpoint_mlm(args, checkpoint):
    """``build_mlm`` on ``checkpoint`` (a ``Checkpoint``) with the --model and --allow-random-mlm-head flags."""
    return build_mlm(
        checkpoint.config_path,
        checkpoint.checkpoint_path,
        model=args.model,
        allow_random_mlm_head=args.allow_random_mlm_head,
        dict_path=checkpoint.dict_path,
    )


def training_generator(args, pvp, labeled, unlabeled):
    """The PetDataGenerator the flags (--batch-size, --mask-rate, --labeled-share, --seed) make
    of these examples; None without any (zero-shot)."""
    if not (labeled or unlabeled):
        return None
    return PetDataGenerator(
        pvp, labeled, unlabeled, args.batch_size, args.mask_rate, seed=args.seed, labeled_share=args.labeled_share
    )


def fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy, labels=None):
    """Train and evaluate by --mode, the model built under ``strategy``: --mode classifier
    fine-tunes a [CLS] classifier on the labeled examples (the baseline; ``labels``, by
    default ``pvp.labels``; no pattern), any other mode trains PET's MLM with ``pvp``
    (fit_pet; zero-shot and no training examples: evaluation only). Returns the run's
    results (fit_pet's or fit_classifier's), written to ``out``."""
    if args.mode == cli.CLASSIFIER:
        labels = labels or pvp.labels
        with strategy.scope():
            model = build_classifier(checkpoint.config_path, checkpoint.checkpoint_path, len(labels), args.model)
        return fit_classifier(
            model,
            checkpoint.tokenizer,
            labels,
            labeled,
            valid,
            test,
            batch_size=args.batch_size,
            maxlen=args.maxlen,
            out_dir=out,
            settings=settings(args),
            **startup.budget_args(args),
        )
    generator = training_generator(args, pvp, labeled, unlabeled)
    with strategy.scope():
        mlm = build_checkpoint_mlm(args, checkpoint)
    return fit_pet(
        mlm,
        pvp,
        generator,
        valid,
        test,
        resume=args.resume,
        may_change=cli.RESUME_MAY_CHANGE,
        out_dir=out,
        settings=settings(args),
        tensorboard=args.tensorboard,
        calibrate=args.calibrate,
        **startup.budget_args(args),
    )
