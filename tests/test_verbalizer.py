"""Several words per label: the aggregations (sum of probabilities, mean of
log-probabilities, max), the verbalizer's checks, the --label-words and
--aggregation flags, and a script trained with several words per label."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pet_keras import cli
from pet_keras.config import TaskSpec, label_words
from pet_keras.data import Dataset
from pet_keras.pattern import PVP
from pet_keras.verbalizer import AGGREGATIONS, Verbalizer
from pet_keras.scoring import Scorer, class_logits
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS, SENTIMENT_WORDS_MULTI
from test_scripts import run_script
from tiny import ex, make_mlm, make_tokenizer, sharpened_mlm, vocab_tokens, write_vocab

REPO = Path(__file__).resolve().parents[1]
REFERENCE_VOCAB = REPO.parent / 'shared' / 'reference' / 'chinese_bert_vocab.txt'
EMBEDDED_VOCAB = REPO / 'checkpoints' / 'chinese_bert_mini_pet' / 'vocab.txt'
EXTRA = list('挺太难比赛')  # label words' characters that the tiny vocabulary lacks
TOKENS = vocab_tokens() + EXTRA


@pytest.fixture(scope='module')
def tok():
    return make_tokenizer(TOKENS)


def multi_pvp(tok, aggregation, template='____满意。{text}'):
    return PVP(template, Verbalizer(SENTIMENT_WORDS_MULTI, aggregation), tok, 32)


# ---------------------------------------------------------------- the aggregations

# Slot probabilities of the five label words (the rest of the vocabulary has 0.30):
# negative 不 0.20, 难 0.05; positive 很 0.30, 挺 0.10, 太 0.05.
WORD_PROBS = {'不': 0.20, '难': 0.05, '很': 0.30, '挺': 0.10, '太': 0.05}
EXPECTED = {  # (negative, positive)
    # sum of probabilities: 0.25 vs 0.45
    'sum': (0.25 / 0.70, 0.45 / 0.70),
    # mean of log-probabilities: geometric means sqrt(0.2 * 0.05) = 0.1 vs cbrt(0.3 * 0.1 * 0.05) = 0.114471
    'mean': (0.1 / (0.1 + 0.0015 ** (1 / 3)), 0.0015 ** (1 / 3) / (0.1 + 0.0015 ** (1 / 3))),
    # max: 0.20 vs 0.30
    'max': (0.4, 0.6),
}


@pytest.mark.parametrize('aggregation', AGGREGATIONS)
def test_class_probabilities_from_word_probabilities(tok, aggregation):
    pvp = multi_pvp(tok, aggregation)
    assert pvp.labels == ['negative', 'positive']
    words = [w for label in pvp.labels for w in SENTIMENT_WORDS_MULTI[label]]
    assert [tok.id_to_token(int(i)) for i in pvp.label_token_ids[:, 0]] == words
    # word scores are logits: log-probabilities plus the slot's log-normaliser, any constant per example
    log_p = np.log([WORD_PROBS[w] for w in words])
    scores = np.stack([log_p + c for c in (0.0, 7.5, -40.0)]).astype('float32')
    probs = tf.nn.softmax(class_logits(pvp, tf.constant(scores))).numpy()
    for row in probs:
        np.testing.assert_allclose(row, EXPECTED[aggregation], rtol=1e-5)


def test_the_aggregations_disagree_where_they_should(tok):
    """Two weak words can outweigh one strong word in a sum but not in a max."""
    words = {'negative': ['不', '难'], 'positive': ['很']}
    p = np.log(np.array([[0.15, 0.15, 0.20]], dtype='float32'))  # 不, 难 | 很
    winner = {}
    for aggregation in AGGREGATIONS:
        pvp = PVP('____满意。{text}', Verbalizer(words, aggregation), tok, 32)
        winner[aggregation] = pvp.labels[int(np.argmax(class_logits(pvp, tf.constant(p)).numpy()))]
    assert winner == {'sum': 'negative', 'mean': 'positive', 'max': 'positive'}


@pytest.fixture(scope='module')
def sharp_mlm(tok, tmp_path_factory):
    tf.random.set_seed(11)
    mlm = sharpened_mlm(len(TOKENS), tmp_path_factory.mktemp('sharp_verbalizer'), hidden=32, layers=2, seed=5)
    return mlm


def slot_softmax(mlm, encoded):
    """The full-vocabulary softmax at each slot position: (slot length, vocab)."""
    logits = mlm.full_model.predict([np.array([encoded.token_ids]), np.array([encoded.segment_ids])], verbose=0)[0][
        encoded.slots
    ].astype('float64')
    p = np.exp(logits - logits.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


AGGREGATE = {'sum': np.sum, 'mean': lambda p: np.exp(np.mean(np.log(p))), 'max': np.max}


@pytest.mark.parametrize('aggregation', AGGREGATIONS)
def test_scorer_matches_the_definitions_on_the_full_vocabulary(tok, sharp_mlm, aggregation):
    """One-token words (sentiment) and two-token words (a word's probability is
    the product over the slot positions) against the full model's softmax."""
    news_words = Verbalizer({'体育': ['体育', '比赛'], '财经': ['财经', '股票', '农业']}, aggregation)
    cases = [
        (multi_pvp(tok, aggregation), [ex('春天花开'), ex('冬天风雨山水'), ex('我们有花')]),
        (PVP('下面报导一则____新闻。{text}', news_words, tok, 32), [ex('春天来了'), ex('东西南北红黄')]),
    ]
    for pvp, examples in cases:
        probs = Scorer(sharp_mlm, pvp).predict_proba(examples, verbose=False)
        for e, row in zip(examples, probs):
            enc = pvp.encode(e)
            p = slot_softmax(sharp_mlm, enc)
            word_p = np.array([np.prod([p[k, t] for k, t in enumerate(ids)]) for ids in pvp.label_token_ids])
            label_p = np.array([AGGREGATE[aggregation](word_p[pvp.word_label == i]) for i in range(len(pvp.labels))])
            np.testing.assert_allclose(row, label_p / label_p.sum(), rtol=1e-4, atol=1e-6)
        assert np.abs(probs - 1 / len(pvp.labels)).max() > 0.02  # far enough from uniform to mean something


# ---------------------------------------------------------------- the presets and the verbalizer's checks


@pytest.mark.parametrize('vocab', [REFERENCE_VOCAB, EMBEDDED_VOCAB], ids=['chinese-bert', 'embedded'])
def test_multi_word_preset_is_one_token_per_word(vocab):
    if not vocab.is_file():
        pytest.skip('%s not present' % vocab)
    from bert4keras.tokenizers import Tokenizer

    tokenizer = Tokenizer(str(vocab), do_lower_case=True)
    for words in SENTIMENT_WORDS_MULTI.values():
        for word in words:
            assert tokenizer.tokenize(word) == ['[CLS]', word, '[SEP]']
            assert tokenizer.token_to_id(word) != tokenizer._token_unk_id
    for template in SENTIMENT_PATTERNS.values():
        assert PVP(template, Verbalizer(SENTIMENT_WORDS_MULTI), tokenizer, 64).slot_length == 1


@pytest.mark.parametrize(
    'words, message',
    [
        ({'negative': ['不'], 'positive': ['很', '不']}, "'不' is given twice"),
        ({'negative': ['不', '不'], 'positive': ['很']}, "'不' is given twice"),
        ({'negative': 3, 'positive': ['很']}, "label 'negative'.*a word or a list of words"),
        ({'negative': ['不', 3], 'positive': ['很']}, "label 'negative'"),
        ({'negative': {'不': 1}, 'positive': ['很']}, "label 'negative'"),
    ],
)
def test_verbalizer_refuses_bad_words(words, message):
    with pytest.raises(ValueError, match=message):
        Verbalizer(words)


# ---------------------------------------------------------------- --label-words and --aggregation


def flags(*argv):
    return cli.script_parser('test', SENTIMENT_PATTERNS, 'P1', 'data').parse_args(list(argv))


def task_verbalizer(args, default_words):
    """The Verbalizer of the task a script makes of these flags."""
    words = label_words(args.label_words, default_words)
    return TaskSpec.from_flags(args, 'sentiment', '____{text}', words, Dataset(), None, None).verbalizer()


def test_default_is_the_scripts_words():
    v = task_verbalizer(flags(), SENTIMENT_WORDS)
    assert v.label_words == SENTIMENT_WORDS and v.aggregation == 'sum'


def test_inline_json_keeps_the_task_label_order():
    v = task_verbalizer(
        flags('--label-words', '{"positive": ["很", "挺", "太"], "negative": "不"}', '--aggregation', 'mean'),
        SENTIMENT_WORDS,
    )
    assert list(v.label_words) == ['negative', 'positive']
    assert v.label_words == {'negative': ['不'], 'positive': ['很', '挺', '太']}
    assert v.aggregation == 'mean'


def test_json_file(tmp_path):
    path = tmp_path / 'words.json'
    path.write_text(json.dumps(SENTIMENT_WORDS_MULTI, ensure_ascii=False), encoding='utf-8')
    v = task_verbalizer(flags('--label-words', str(path), '--aggregation', 'max'), SENTIMENT_WORDS)
    assert v.label_words == SENTIMENT_WORDS_MULTI and v.aggregation == 'max'


@pytest.mark.parametrize(
    'value, message',
    [
        (
            '{"positive": "很", "neutral": "理"}',
            'expected exactly the labels negative, positive; unknown: neutral; missing: negative',
        ),
        ('{"positive": "很"}', 'expected exactly the labels negative, positive; unknown: none; missing: negative'),
        ('{"positive": "很", "negative": []}', "label 'negative' has no"),
        ('{"positive": "很", "negative": "很"}', "'很' is given twice"),
        ('["很", "不"]', 'expected a JSON object label → list of words, found list'),
        ('words.json', "inline JSON 'words.json' \\(no file of that name\\): malformed JSON"),
        (
            "{'positive': '很'}",
            'malformed JSON \\(Expecting property name enclosed in double quotes at line 1 column 2',
        ),
    ],
)
def test_bad_label_words_are_clear_errors(value, message):
    with pytest.raises(ValueError, match='^--label-words: .*' + message):
        task_verbalizer(flags('--label-words', value), SENTIMENT_WORDS)


def test_bad_json_file_is_named(tmp_path):
    path = tmp_path / 'words.json'
    path.write_text('{"positive": ["很"],\n "negative": ["不"],}\n', encoding='utf-8')
    with pytest.raises(ValueError, match='%s: malformed JSON .* at line 2 column' % re.escape(str(path))):
        task_verbalizer(flags('--label-words', str(path)), SENTIMENT_WORDS)
    path.write_bytes('{"positive": "很"}'.encode('gbk'))
    with pytest.raises(ValueError, match='%s is not UTF-8' % re.escape(str(path))):
        task_verbalizer(flags('--label-words', str(path)), SENTIMENT_WORDS)


def test_unknown_aggregation_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        flags('--aggregation', 'median')
    assert info.value.code == 2
    assert "invalid choice: 'median'" in capsys.readouterr().err


# ---------------------------------------------------------------- the scripts


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A tiny random BERT (2 layers, hidden 32) over the tiny vocabulary plus 挺太难."""
    folder = tmp_path_factory.mktemp('verbalizer_tiny')
    vocab = write_vocab(folder / 'vocab.txt', TOKENS)
    mlm = make_mlm(len(TOKENS), folder / 'build', hidden=32, layers=2, max_position=64)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, vocab)
    return folder / 'ckpt'


def test_sentiment_trains_with_several_words_per_label(checkpoint, tmp_path):
    data, out = tmp_path / 'data', tmp_path / 'out'
    data.mkdir()
    rng = np.random.default_rng(0)
    pool = list('我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬')
    for split, n in (('train', 40), ('valid', 6), ('test', 6)):
        rows = [''.join(rng.choice(pool, 8)) + '\t%d\n' % (i % 2) for i in range(n)]
        (data / ('sentiment.%s.data' % split)).write_text(''.join(rows), encoding='utf-8')
    result = run_script(
        'sentiment.py',
        '--checkpoint-dir',
        checkpoint,
        '--data-dir',
        data,
        '--mode',
        'few-shot',
        '--labeled-fraction',
        0.5,
        '--label-words',
        json.dumps(SENTIMENT_WORDS_MULTI),
        '--aggregation',
        'mean',
        '--steps',
        2,
        '--eval-every',
        2,
        '--batch-size',
        4,
        '--maxlen',
        24,
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'train 40 (labeled 20, unlabeled 0), valid 6, test 6' in result.stdout
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['settings']['aggregation'] == 'mean'
    assert results['pattern']['label_words'] == SENTIMENT_WORDS_MULTI and results['pattern']['aggregation'] == 'mean'
    assert len(results['evaluations']) == 1 and results['evaluations'][0]['loss'] > 0
    saved = json.loads((out / 'pvp.json').read_text(encoding='utf-8'))
    assert saved['label_words'] == SENTIMENT_WORDS_MULTI and saved['aggregation'] == 'mean'


def test_news_refuses_label_words_for_unknown_labels(checkpoint, tmp_path):
    data = tmp_path / 'tnews'
    data.mkdir()
    row = json.dumps({'sentence': '春天来了', 'label': 103, 'label_desc': 'news_sports'}) + '\n'
    for name in ('train_few_all.json', 'dev_few_all.json', 'test_public.json'):
        (data / name).write_text(row, encoding='utf-8')
    result = run_script(
        'news.py',
        '--checkpoint-dir',
        checkpoint,
        '--data-dir',
        data,
        '--mode',
        'zero-shot',
        '--label-words',
        '{"体育": ["体育"], "sports": ["比赛"]}',
        '--out',
        tmp_path / 'out',
    )
    assert result.returncode == 2
    assert 'error: --label-words: expected exactly the labels 故事, 文化, 娱乐' in result.stderr
    assert 'unknown: sports; missing: 故事, 文化' in result.stderr
