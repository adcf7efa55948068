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
import json
import os

from pet_keras.io import write_json
from pet_keras import cli
from pet_keras.data import Dataset, Example, read_jsonl, read_tsv, split_labeled
from pet_keras.pattern import PVP, Pattern, Verbalizer

SPLITS = ('train', 'valid', 'test', 'unlabeled')
# task-file keys whose relative paths are relative to the task file
PATH_KEYS = SPLITS + ('checkpoint_dir', 'config_path', 'checkpoint_path', 'dict_path', 'out', 'label_words')


def data_flags(p, splits=SPLITS, task_file=True, pattern=False):
    """The task's files and how to read them, on parser ``p``; ``pattern``: with --pattern
    (cli.parser has its own)."""
    d = p.add_argument_group('task files (JSON lines, or TSV with --columns)')
    if task_file:
        d.add_argument('--task', help='a JSON file of these flags\' values, e.g. {"train": "train.jsonl", "valid": '
                       '…, "test": …, "pattern": …, "label_field": …, "label_words": {…}, "mode": …}; its '
                       'relative paths are relative to it; flags given on the command line override it')
    helps = {'train': 'the labeled training examples', 'valid': 'labeled examples that choose the best step',
             'test': 'labeled examples, scored once with the best weights',
             'unlabeled': 'more unlabeled text (unsupervised and semi-supervised modes)'}
    for split in splits:
        d.add_argument('--' + split, help=helps[split])
    d.add_argument('--columns', help='the files are TSV with these columns, the label last, e.g. sentence,label '
                   '(a .tsv file needs it)')
    d.add_argument('--label-field', default='label', help='the key (or column) of the label (default label)')
    if pattern:
        d.add_argument('--pattern', help='a template with a ____ slot and the data\'s keys as {fields}')


def task_flags(path):
    """The command-line flags a ``--task`` file stands for: put before the
    flags given, they are overridden by them."""
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
        flag = '--' + key.replace('_', '-')
        if key == 'task':
            raise ValueError('--task %s: a task file cannot name another' % path)
        if isinstance(value, bool):
            flags += [flag] if value else []
            continue
        if key == 'label_words' and isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False)
        elif key == 'columns' and isinstance(value, list):
            value = ','.join(value)
        elif key in PATH_KEYS and isinstance(value, str) and (key != 'label_words' or
                                                               os.path.isfile(os.path.join(base, value))):
            value = os.path.normpath(os.path.join(base, value))
        if value is not None:
            flags.append('%s=%s' % (flag, value))
    return flags


def read_split(path, fields, columns, label_field, labeled=True):
    """One file's examples with just the pattern's ``fields``: JSON lines, or TSV named by ``columns``."""
    if columns or path.lower().endswith('.tsv'):
        if not columns:
            raise ValueError('%s: a TSV file needs --columns naming its columns, e.g. --columns %s'
                             % (path, ','.join(fields + [label_field])))
        columns = columns.split(',')
        texts = [name for name in columns if name != label_field]
        if labeled and columns[-1] != label_field:
            raise ValueError('--columns %s: the label column %s must be the last' % (','.join(columns), label_field))
        missing = [name for name in fields if name not in texts]
        if missing:
            raise ValueError('--columns %s: no column for the pattern\'s {%s}' % (','.join(columns), missing[0]))
        data = read_tsv(path, fields=texts, labeled=labeled)
    else:
        data = read_jsonl(path, {name: name for name in fields}, label_field, labeled=labeled)
    return Dataset([Example({name: e.fields[name] for name in fields}, e.label, e.source, e.id) for e in data],
                   data.skipped, path)


def read_data(args, fields, splits=SPLITS):
    """{split: Dataset} of the files given, printing what was read and skipped."""
    data = {}
    for split in splits:
        path = getattr(args, split)
        if path is None:
            continue
        data[split] = read_split(path, fields, args.columns, args.label_field, labeled=split != 'unlabeled')
        print('%s %s: %d examples%s' % (split, path, len(data[split]), ', %d rows skipped (blank, or a field of '
                                        'the pattern empty)' % data[split].skipped if data[split].skipped else ''))
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
    only): a label without words is its own word, if the vocabulary spells it."""
    unspellable = {}
    for label in labels:
        ids = tokenizer.encode(label)[0][1:-1]
        if label not in words and (not ids or tokenizer._token_unk_id in ids):
            unspellable[label] = ' '.join(tokenizer.ids_to_tokens(ids))
    if unspellable:
        raise ValueError('label %s: not a word the vocabulary spells, so not its own label word; give '
                         '--label-words for it, e.g. --label-words \'%s\''
                         % (', '.join('%r (tokens %s)' % item for item in unspellable.items()),
                            json.dumps({label: ['…'] for label in unspellable}, ensure_ascii=False)))
    try:
        return Verbalizer({label: words.get(label, label) for label in labels}, aggregation, length_norm)
    except ValueError as e:
        raise ValueError('--label-words: %s' % e) from None


def required(args, *names):
    missing = ['--' + name for name in names if getattr(args, name) is None]
    if missing:
        raise ValueError('%s required (or in the --task file)' % ', '.join(missing))


def settings(args):
    """The flags as fit_pet records them (results.json, run.json)."""
    return {key: value for key, value in vars(args).items() if key not in ('run', 'command')}


def load_checkpoint(args):
    """(config_path, checkpoint_path, dict_path, tokenizer) of the checkpoint flags."""
    from pet_keras.model import load_config, load_tokenizer
    config_path, checkpoint_path, dict_path = cli.checkpoint_paths(args)
    return config_path, checkpoint_path, dict_path, load_tokenizer(dict_path, load_config(config_path), config_path)


def train(args):
    """``pet-keras train``: the scripts' flow (scripts/sentiment.py) on the task's files."""
    from pet_keras.classifier import build_classifier, fit_classifier
    from pet_keras.generator import PetDataGenerator
    from pet_keras.model import build_mlm
    from pet_keras.train import fit_pet, training_sets

    required(args, 'train', 'valid', 'test', 'pattern')
    name = os.path.splitext(os.path.basename(args.task))[0] if args.task \
        else os.path.basename(os.path.dirname(os.path.abspath(args.train)))
    out = args.out or os.path.join('runs', '%s-%s' % (name, args.mode))
    cli.check_start(args, out)
    strategy = cli.strategy(args)  # first: multi-worker sets up TensorFlow
    cli.seed_everything(args.seed)
    cli.set_precision(args)
    pattern = Pattern(args.pattern)
    data = read_data(args, pattern.fields)
    words = cli.read_label_words(args.label_words) if args.label_words else {}
    labels = task_labels(data, words)
    labeled, unlabeled = split_labeled(data['train'], args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled + list(data.get('unlabeled', ())))
    print('labels (%d): %s' % (len(labels), ', '.join(labels)))
    print('labeled %d, unlabeled %d, valid %d, test %d'
          % (len(labeled), len(unlabeled), len(data['valid']), len(data['test'])))
    cli.check_data(args, labeled, unlabeled, data['train'], data['valid'], data['test'],
                   *[data[split] for split in ('unlabeled',) if split in data])
    config_path, checkpoint_path, dict_path, tokenizer = load_checkpoint(args)
    if args.mode == cli.CLASSIFIER:  # the baseline: a [CLS] classifier on the same labeled examples
        with strategy.scope():
            model = build_classifier(config_path, checkpoint_path, len(labels), args.model)
        return fit_classifier(model, tokenizer, labels, labeled, data['valid'], data['test'],
                              batch_size=args.batch_size, maxlen=args.maxlen, out_dir=out, settings=settings(args),
                              **cli.budget_args(args))
    verbalizer = task_verbalizer(labels, words, tokenizer, args.aggregation, args.length_norm)
    pvp = PVP(pattern, verbalizer, tokenizer, args.maxlen)
    generator = PetDataGenerator(pvp, labeled, unlabeled, args.batch_size, args.mask_rate, seed=args.seed) \
        if labeled or unlabeled else None
    with strategy.scope():
        mlm = build_mlm(config_path, checkpoint_path, model=args.model,
                        allow_random_mlm_head=args.allow_random_mlm_head, dict_path=dict_path)
    return fit_pet(mlm, pvp, generator, data['valid'], data['test'], resume=args.resume, out_dir=out,
                   settings=settings(args), tensorboard=args.tensorboard, calibrate=args.calibrate,
                   **cli.budget_args(args))


def label_words(args):
    """``pet-keras label-words``: PETAL's search (pet_keras.label_search) on the
    labeled training file, written as the JSON ``--label-words`` reads."""
    from pet_keras.label_search import label_words_json, print_label_words, search
    from pet_keras.model import build_mlm

    required(args, 'train', 'pattern')
    cli.set_precision(args)
    pattern = Pattern(args.pattern)
    examples = read_data(args, pattern.fields, ('train',))['train']
    config_path, checkpoint_path, dict_path, tokenizer = load_checkpoint(args)
    mlm = build_mlm(config_path, checkpoint_path, model=args.model,
                    allow_random_mlm_head=args.allow_random_mlm_head, dict_path=dict_path)
    found = search(mlm, args.pattern, tokenizer, examples, k=args.top_k, maxlen=args.maxlen,
                   length_norm=args.length_norm, batch_size=args.batch_size)
    print_label_words(found)
    write_json(args.out, label_words_json(found))
    print('label words written to %s (pass it as --label-words %s)' % (args.out, args.out))
