"""What a run is, as two objects: ``TaskSpec``, the task (its examples, pattern and label
words), and ``RunConfig``, how it trains (mode, budget, seed, output folder, precision,
distribution, checkpoint). Flags become them once, at the command line's edge
(``TaskSpec(...)`` in a script, ``RunConfig.from_flags``); Python code builds them directly.
The library takes these, never argparse's Namespace; a run folder records them
(results.json "settings", run.json), and ``RunConfig.from_json`` reads them back, checked.

It loads no TensorFlow."""

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from pet_keras import budget, crossval, modes
from pet_keras.data import Dataset
from pet_keras.pattern import Pattern
from pet_keras.verbalizer import Verbalizer

# the settings a resumed run may change: none of them changes the data or what the steps done mean
# (mixed_precision changes the compute dtype only; weights and optimizer state are float32 either way)
# lexical: the expert is fitted after PET has trained, so it changes nothing PET trains on
RESUME_MAY_CHANGE = (
    'resume', 'overwrite', 'steps', 'patience', 'fold_patience', 'out', 'distribute', 'tensorboard',
    'mixed_precision', 'lexical',
)  # fmt: skip


@dataclass
class RunConfig:
    """How a run trains. The fields are the flags of the scripts and of ``pet-keras train``
    (``--help`` lists them), with the flags' defaults; ``patience=None`` never stops early (the flag's
    0), ``learning_rate=None`` takes the mode's default (``budget.default_learning_rate``) and
    ``checkpoint_dir=None`` the embedded checkpoint. ``lexical=None`` (the default) adds the lexical
    expert where it can join (``runner.adds_lexical_expert``), True requires it, False leaves PET alone.
    ``fold_valid`` adds the validation examples to the labeled ones, and the steps are then chosen
    by cross-validation over both (``folds``; FewCLUE's train + dev). ``fold_patience`` is the folds'
    patience (None: they never stop early); ``patience`` acts on validation, which such a run lacks."""

    mode: str = 'few-shot'
    steps: int = budget.STEPS
    eval_every: int = budget.EVAL_EVERY
    patience: Optional[int] = budget.PATIENCE
    learning_rate: Optional[float] = None
    batch_size: int = 32
    mask_rate: float = 0.15
    slot_loss: str = budget.SLOT_LOSS
    prompt_only: bool = False
    lexical: Optional[bool] = None
    labeled_share: Optional[float] = budget.LABELED_SHARE
    folds: int = crossval.FOLDS
    fold_patience: Optional[int] = budget.FOLD_PATIENCE
    fold_valid: bool = False
    seed: int = 0
    calibrate: bool = False
    out: Optional[str] = None
    overwrite: bool = False
    resume: bool = False
    tensorboard: bool = False
    distribute: Optional[str] = None
    mixed_precision: bool = False
    checkpoint_dir: Optional[str] = None
    config_path: Optional[str] = None
    checkpoint_path: Optional[str] = None
    dict_path: Optional[str] = None
    model: str = 'bert'
    allow_random_mlm_head: bool = False

    def __post_init__(self):
        modes.check(self.mode)
        budget.check(self.steps, self.eval_every, self.patience, self.learning_rate)
        if self.fold_patience is not None and (not isinstance(self.fold_patience, int) or self.fold_patience < 1):
            raise ValueError('fold_patience must be a whole number >= 1 (or None: folds never stop early), got %r'
                             % (self.fold_patience,))  # fmt: skip
        budget.check_slot_loss(self.slot_loss, ())
        if self.prompt_only and self.mode == modes.CLASSIFIER:
            raise ValueError("--prompt-only trains a pattern's [P] tokens; --mode classifier has no pattern")
        if self.lexical and self.mode not in modes.WITH_LEXICAL_EXPERT:
            raise ValueError(
                '--lexical learns from labeled examples beside PET: --mode few-shot or semi-supervised, not %s'
                % self.mode
            )
        if self.fold_valid and not modes.MODES[self.mode].labeled:
            raise ValueError(
                '--fold-valid adds the validation examples to the labeled ones; --mode %s trains on no labeled '
                'examples: leave --fold-valid out' % self.mode
            )
        if self.mode in modes.TRAINED and self.steps < 1:
            raise ValueError(
                '--steps %d: --mode %s trains, so it needs at least one step (--mode zero-shot only '
                'evaluates)' % (self.steps, self.mode)
            )

    @classmethod
    def from_flags(cls, args, **defaults):
        """The config of parsed flags (``args``, argparse's Namespace; ``--lr`` is
        ``learning_rate``, ``--patience 0`` and ``--fold-patience 0`` are None); ``defaults``: values
        for fields the flags leave unset (None), e.g. the script's ``out``."""
        flags = dict(vars(args), learning_rate=getattr(args, 'lr', None))
        for name in ('patience', 'fold_patience'):
            if name in flags:
                flags[name] = flags[name] or None
        values = {f.name: flags[f.name] for f in dataclasses.fields(cls) if f.name in flags}
        values.update((key, value) for key, value in defaults.items() if values.get(key) is None)
        return cls(**values)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values, where='run configuration'):
        """The config of ``to_json``'s dict, each value checked against its field's type."""
        if not isinstance(values, dict):
            raise ValueError('%s: expected a JSON object of settings, found %s' % (where, type(values).__name__))
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError('%s: unknown setting %s (expected: %s)' % (where, unknown[0], ', '.join(known)))
        for name, value in values.items():
            if not _has_type(value, known[name].type):
                raise ValueError(
                    '%s: %s is %s; expected %s'
                    % (where, name, json.dumps(value, ensure_ascii=False), _type_name(known[name].type))
                )
        return cls(**values)

    @classmethod
    def from_run_folder(cls, run_dir):
        """The config a finished run in ``run_dir`` was trained with: its results.json
        "settings" (which also hold the task's), checked as ``from_json`` checks them."""
        path = os.path.join(run_dir, 'results.json')
        try:
            with open(path, encoding='utf-8') as f:
                settings = json.load(f)['settings']
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError('%s: not the results.json of a run (%s)' % (path, e)) from None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls.from_json({k: v for k, v in settings.items() if k in names}, where=path)

    def budget(self):
        """``fit_pet``'s and ``fit_classifier``'s budget and learning rate."""
        return {
            'steps': self.steps,
            'eval_every': self.eval_every,
            'patience': self.patience,
            'learning_rate': self.learning_rate,
        }

    def checkpoint_inputs(self):
        """{flag: path} of the checkpoint a run reads (its --out may not be or hold any of them)."""
        return {
            '--checkpoint-dir': str(self.checkpoint_dir or budget.EMBEDDED_CHECKPOINT),
            '--config-path': self.config_path,
            '--checkpoint-path': self.checkpoint_path,
            '--dict-path': self.dict_path,
        }


def _has_type(value, kind):
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return value is None or _has_type(value, kind.__args__[0])  # Optional[...]


def _type_name(kind):
    return kind.__name__ if isinstance(kind, type) else '%s or null' % kind.__args__[0].__name__


@dataclass
class TaskSpec:
    """A classification task: its examples, its pattern and its label words.

    Args:
        name: names the default run folder (runs/<name>-<mode>...).
        template: the pattern, a template with a ``____`` slot and the data's ``{fields}``.
        label_words: label → word or list of words, in the labels' order.
        train: the training examples (``Dataset``), labeled; ``labeled_fraction`` of them keep
            their label (``split_seed``: chosen at random, else the first), the rest are text only.
        valid, test: labeled examples; ``valid=None``: the steps are chosen by cross-validation.
        unlabeled: more text, unlabeled.
        max_unlabeled: use only the first so many unlabeled texts (None: all).
        named_labels: labels whose word is their own name, not given by the user: a name the
            vocabulary cannot spell whole is refused, asking for --label-words.
        aggregation, length_norm: the ``Verbalizer``'s.
        maxlen: tokens per example, pattern included.
        windows: read a longer text whole, in overlapping windows (``PVP.text_windows``).
        files: {flag: path} of what the task was read from (a run's --out may not be or hold any).
    """

    name: str
    template: str
    label_words: dict
    train: Dataset
    valid: Optional[Dataset] = None
    test: Optional[Dataset] = None
    unlabeled: Dataset = field(default_factory=Dataset)
    max_unlabeled: Optional[int] = None
    labeled_fraction: float = 1.0
    split_seed: Optional[int] = None
    named_labels: tuple = ()
    aggregation: str = 'sum'
    length_norm: bool = False
    maxlen: int = 128
    windows: bool = False
    files: dict = field(default_factory=dict)

    def __post_init__(self):
        for split in ('train', 'valid', 'test', 'unlabeled'):  # plain lists (slices) become Datasets
            examples = getattr(self, split)
            if examples is not None and not isinstance(examples, Dataset):
                setattr(self, split, Dataset(examples))
        self.verbalizer()  # bad words are refused now, before any file or model is touched

    @classmethod
    def from_flags(cls, args, name, template, label_words, train, valid, test, unlabeled=(), **more):
        """The task of a script's data and pattern with its flags (argparse's Namespace): --no-valid
        leaves ``valid`` out, and --labeled-fraction, --split-seed, --aggregation, --length-norm,
        --maxlen and the files read are taken from the flags; ``more``: other fields."""
        return cls(
            name,
            template,
            label_words,
            train,
            None if getattr(args, 'no_valid', False) else valid,
            test,
            Dataset(unlabeled),
            max_unlabeled=getattr(args, 'max_unlabeled', None),
            labeled_fraction=args.labeled_fraction,
            split_seed=args.split_seed,
            aggregation=args.aggregation,
            length_norm=args.length_norm,
            maxlen=args.maxlen,
            windows=args.windows,
            files=input_files(args),
            **more,
        )

    @property
    def labels(self):
        return list(self.label_words)

    def verbalizer(self):
        try:
            return Verbalizer(self.label_words, self.aggregation, self.length_norm)
        except ValueError as e:
            raise ValueError('--label-words: %s' % e) from None

    def to_json(self):
        """The task as a run's settings record it (its data by file, not row)."""
        return {
            'task': self.name,
            'pattern': self.template,
            'label_words': self.label_words,
            'aggregation': self.aggregation,
            'length_norm': self.length_norm,
            'maxlen': self.maxlen,
            'windows': self.windows,
            'labeled_fraction': self.labeled_fraction,
            'max_unlabeled': self.max_unlabeled,
            'split_seed': self.split_seed,
            'files': self.files,
        }


# the flags whose paths a run reads (with the checkpoint's): its --out may not be, hold or lie inside any
INPUT_FLAGS = ('train', 'valid', 'test', 'unlabeled', 'task', 'data_dir', 'label_words')


def input_files(args):
    """{flag: path} of the data, task and label-word files the flags name (inline JSON is not a file)."""
    paths = {'--' + name.replace('_', '-'): getattr(args, name, None) for name in INPUT_FLAGS}
    if paths['--label-words'] is not None and not os.path.exists(paths['--label-words']):
        del paths['--label-words']
    return {flag: path for flag, path in paths.items() if path is not None}


def preset_template(value, presets):
    """--pattern ``value``: a preset's template, or the template given, which may name only the
    fields the presets name (the task's data has no others)."""
    template = presets.get(value, value)
    fields = {name for preset in presets.values() for name in Pattern(preset).fields}
    unknown = [name for name in Pattern(template).fields if name not in fields]
    if unknown:
        raise ValueError(
            '--pattern %r names %s, not a field of this task (use its fields: %s)'
            % (template, ', '.join('{%s}' % name for name in unknown), ', '.join('{%s}' % f for f in sorted(fields)))
        )
    return template


def label_words(value, default_words):
    """The label words of --label-words ``value`` (a JSON file or inline JSON; None:
    ``default_words``), which must have exactly the labels of ``default_words`` (the task's
    labels); they keep that order."""
    if value is None:
        return dict(default_words)
    words = read_label_words(value)
    unknown = [label for label in words if label not in default_words]
    missing = [label for label in default_words if label not in words]
    if unknown or missing:
        raise ValueError(
            '--label-words: expected exactly the labels %s; unknown: %s; missing: %s'
            % (', '.join(default_words), ', '.join(unknown) or 'none', ', '.join(missing) or 'none')
        )
    return {label: words[label] for label in default_words}


def read_label_words(value):
    """The JSON object of --label-words: the file ``value`` if it exists, else ``value`` itself."""
    if os.path.isdir(value):
        raise ValueError('--label-words %s is a folder; expected a JSON file or inline JSON' % value)
    if os.path.isfile(value):
        where = value
        try:
            with open(value, encoding='utf-8') as f:
                value = f.read()
        except UnicodeDecodeError:
            raise ValueError('--label-words: %s is not UTF-8 text' % where) from None
    else:
        where = 'inline JSON %r (no file of that name)' % value
    try:
        words = json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(
            '--label-words: %s: malformed JSON (%s at line %d column %d)' % (where, e.msg, e.lineno, e.colno)
        ) from None
    if not isinstance(words, dict):
        raise ValueError(
            '--label-words: %s: expected a JSON object label → list of words, found %s' % (where, type(words).__name__)
        )
    return words
