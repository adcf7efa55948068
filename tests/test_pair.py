"""Sentence pairs: the pair reader (JSON lines and TSV), pair patterns and
their truncation, and scripts/pair.py end to end on a tiny checkpoint."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
from pathlib import Path

import pytest

from pet_keras.data import Example, read_tsv
from pet_keras.pattern import PVP, Pattern
from pet_keras.verbalizer import Verbalizer
from pet_keras.presets import PAIR_LABELS, PAIR_PATTERNS, PAIR_WORDS, read_pairs
from test_scripts import flat, run_script
from tiny import make_mlm, make_tokenizer, vocab_tokens, write_vocab

REFERENCE_VOCAB = Path(__file__).resolve().parents[2] / 'shared' / 'reference' / 'chinese_bert_vocab.txt'
# Q2's characters that the tiny vocabulary lacks
EXTRA = list('；两句话思相同吗')


def write(path, text):
    path.write_text(text, encoding='utf-8')
    return str(path)


def jsonl(rows):
    return ''.join(json.dumps(row, ensure_ascii=False) + '\n' for row in rows)


# ------------------------------------------------------------------ reading pairs


def test_labels_documented():
    assert PAIR_LABELS == {'0': 'different', '1': 'same'}
    assert set(PAIR_WORDS) == set(PAIR_LABELS.values())


def test_json_pairs_bustm_and_lcqmc_forms(tmp_path):
    path = write(
        tmp_path / 'train.json',
        jsonl(
            [
                {
                    'id': 0,
                    'sentence1': '春天来了',
                    'sentence2': '春天到了',
                    'label': '1',
                },  # FewCLUE BUSTM: string labels
                {'sentence1': '花开', 'sentence2': '下雨', 'label': 0},  # CLUE LCQMC/AFQMC: numbers
                {'sentence1': ' ', 'sentence2': '下雨', 'label': 0},  # empty sentence: skipped
            ]
        )
        + '\n',
    )
    data = read_pairs(path)
    assert data == [
        Example({'a': '春天来了', 'b': '春天到了'}, 'same', '%s:1' % path),
        Example({'a': '花开', 'b': '下雨'}, 'different', '%s:2' % path),
    ]
    assert data.skipped == 2  # the empty sentence and the blank line


def test_json_pairs_unlabeled_ignore_labels(tmp_path):
    path = write(
        tmp_path / 'unlabeled.json',
        jsonl([{'sentence1': '春天', 'sentence2': '花开'}, {'sentence1': '东', 'sentence2': '西', 'label': '7'}]),
    )
    data = read_pairs(path, labeled=False)
    assert [(e.fields, e.label) for e in data] == [({'a': '春天', 'b': '花开'}, None), ({'a': '东', 'b': '西'}, None)]


@pytest.mark.parametrize(
    'row, message',
    [
        ({'sentence1': '春天', 'sentence2': '花开', 'label': '2'}, r"label '2' is not one of \['0', '1'\]"),
        (
            {'sentence1': '春天', 'sentence2': '花开', 'label': 1.0},
            r'label 1.0 is float; expected a string or an integer',
        ),
        ({'sentence1': '春天', 'sentence2': '花开'}, 'no label'),
        ({'sentence1': '春天', 'label': '1'}, 'no b field'),
    ],
)
def test_json_pair_errors_name_file_and_line(tmp_path, row, message):
    path = write(tmp_path / 'dev.json', jsonl([{'sentence1': '好', 'sentence2': '好', 'label': 1}, row]))
    with pytest.raises(ValueError, match=message) as info:
        read_pairs(path)
    assert str(info.value).startswith('%s:2: ' % path)


def test_tsv_pairs(tmp_path):
    path = write(tmp_path / 'train.tsv', '春天来了\t春天到了\t1\n\n花开\t下雨\t0\n东\t \t1\n')
    data = read_pairs(path)
    assert data == [
        Example({'a': '春天来了', 'b': '春天到了'}, 'same', '%s:1' % path),
        Example({'a': '花开', 'b': '下雨'}, 'different', '%s:3' % path),
    ]
    assert data.skipped == 2  # the blank line and the empty second sentence
    # unlabeled: two columns
    path = write(tmp_path / 'unlabeled.tsv', '春天\t花开\n')
    assert read_pairs(path, labeled=False) == [Example({'a': '春天', 'b': '花开'}, None, '%s:1' % path)]


@pytest.mark.parametrize(
    'line, labeled, message',
    [
        ('春天\t1', True, r'expected "a<TAB>b<TAB>label", found 2 columns'),
        ('春天\t花开\t下雨\t1', True, r'expected "a<TAB>b<TAB>label", found 4 columns'),
        ('春天花开', True, r'expected "a<TAB>b<TAB>label", found no tab'),
        ('春天\t花开\t2', True, r"label '2' is not one of \['0', '1'\]"),
        ('春天\t花开\t1', False, r'expected "a<TAB>b", found 3 columns'),  # a label where none belongs
    ],
)
def test_tsv_pair_errors_name_file_and_line(tmp_path, line, labeled, message):
    good = '好\t好\t1\n' if labeled else '好\t好\n'
    path = write(tmp_path / 'pairs.txt', good + line + '\n')
    with pytest.raises(ValueError, match=message) as info:
        read_pairs(path, labeled=labeled)
    assert str(info.value).startswith('%s:2: ' % path)


def test_tsv_pair_not_utf8(tmp_path):
    path = tmp_path / 'gbk.tsv'
    path.write_bytes('好\t好\t1\n'.encode('utf-8') + '春天\t花开\t1\n'.encode('gbk'))
    with pytest.raises(ValueError, match=r'gbk\.tsv:2: not UTF-8'):
        read_pairs(str(path))


def test_single_text_tsv_keeps_tabs_in_the_text(tmp_path):
    """The generalised reader still reads text<TAB>label with the label after the last tab."""
    path = write(tmp_path / 'x.tsv', '好\t很好\t1\n')
    assert read_tsv(path, {'1': 'positive'}) == [Example({'text': '好\t很好'}, 'positive', '%s:1' % path)]
    assert read_tsv(path, labeled=False) == [Example({'text': '好\t很好\t1'}, None, '%s:1' % path)]


# ------------------------------------------------------------------ pair patterns


@pytest.fixture(scope='module')
def tok():
    return make_tokenizer(vocab_tokens() + EXTRA)


def toks(tok, ids):
    return tok.ids_to_tokens(list(ids))


LONG = '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬'  # 40 characters


def test_pair_words_are_two_tokens_each(tok):
    pvp = PVP(PAIR_PATTERNS['Q1'], Verbalizer(PAIR_WORDS), tok, 32)
    assert pvp.slot_length == 2
    assert [toks(tok, row) for row in pvp.label_token_ids] == [['不', '是'], ['是', '的']]
    assert pvp.labels == ['different', 'same']


@pytest.mark.skipif(not REFERENCE_VOCAB.is_file(), reason='%s not present' % REFERENCE_VOCAB)
def test_pair_preset_in_the_chinese_bert_vocab():
    from bert4keras.tokenizers import Tokenizer

    tokenizer = Tokenizer(str(REFERENCE_VOCAB), do_lower_case=True)
    for name, template in PAIR_PATTERNS.items():
        pvp = PVP(template, Verbalizer(PAIR_WORDS), tokenizer, 64)  # refuses unknown or unequal words
        assert pvp.slot_length == 2
        e = pvp.encode(Example({'a': '今天天气怎么样', 'b': '今天天气如何'}, 'same', 'x:1'))
        assert tokenizer._token_unk_id not in e.token_ids, name  # the pattern's characters are in the vocab


@pytest.mark.parametrize('name', sorted(PAIR_PATTERNS))
def test_pair_encode_fills_both_fields(tok, name):
    pvp = PVP(PAIR_PATTERNS[name], Verbalizer(PAIR_WORDS), tok, 64)
    e = pvp.encode(Example({'a': '春天', 'b': '花开'}, 'same', 'p:1'))
    expected = {
        'Q1': list('春天？') + ['[MASK]'] * 2 + list('，花开'),
        'Q2': list('春天；花开。两句话意思相同吗？') + ['[MASK]'] * 2 + ['。'],
    }[name]
    assert toks(tok, e.token_ids) == ['[CLS]'] + expected + ['[SEP]']
    assert e.slots == [i + 1 for i, t in enumerate(expected) if t == '[MASK]']
    assert e.segment_ids == [0] * len(e.token_ids)
    assert e.label == pvp.labels.index('same')


def fixed_tokens(template):
    """[CLS] + [SEP] + the pattern's literal characters + the 2-token slot."""
    return 2 + 2 + sum(len(text) for kind, text in Pattern(template).parts if kind == 'literal')


@pytest.mark.parametrize('name', sorted(PAIR_PATTERNS))
@pytest.mark.parametrize('long_field', ['a', 'b'])
def test_truncation_cuts_the_longer_sentence_and_keeps_the_pattern(tok, name, long_field):
    template = PAIR_PATTERNS[name]
    fixed = fixed_tokens(template)
    maxlen = fixed + 14
    pvp = PVP(template, Verbalizer(PAIR_WORDS), tok, maxlen)
    short = '春夏秋冬'
    fields = {'a': short, 'b': short, long_field: LONG}
    e = pvp.encode(Example(fields, 'same', 'p:1'))
    assert len(e.token_ids) == maxlen
    kept = {'a': short, 'b': short, long_field: LONG[:10]}  # only the long one is cut, from its end
    unchanged = PVP(template, Verbalizer(PAIR_WORDS), tok, 128).encode(Example(kept, 'same', 'p:1'))
    assert e.token_ids == unchanged.token_ids and e.slots == unchanged.slots
    assert toks(tok, [e.token_ids[i] for i in e.slots]) == ['[MASK]', '[MASK]']


@pytest.mark.parametrize('name', sorted(PAIR_PATTERNS))
def test_truncation_of_two_long_sentences_shares_the_room(tok, name):
    template = PAIR_PATTERNS[name]
    maxlen = fixed_tokens(template) + 15
    pvp = PVP(template, Verbalizer(PAIR_WORDS), tok, maxlen)
    e = pvp.encode(Example({'a': LONG, 'b': LONG[::-1]}, None, 'p:1'))
    assert len(e.token_ids) == maxlen
    # both are cut from their ends, to 7 and 8 tokens (on a tie the first field is cut first)
    kept = PVP(template, Verbalizer(PAIR_WORDS), tok, 128).encode(
        Example({'a': LONG[:7], 'b': LONG[::-1][:8]}, None, 'p:1')
    )
    assert e.token_ids == kept.token_ids and e.slots == kept.slots


@pytest.mark.parametrize('name', sorted(PAIR_PATTERNS))
def test_maxlen_below_the_pattern_is_refused_at_construction(tok, name):
    template = PAIR_PATTERNS[name]
    fixed = fixed_tokens(template)
    for maxlen in (fixed - 3, fixed, fixed + 1):  # each field needs at least one token
        with pytest.raises(ValueError, match='maxlen %d leaves no room for text in pattern' % maxlen) as info:
            PVP(template, Verbalizer(PAIR_WORDS), tok, maxlen)
        assert '%d tokens without the text' % fixed in str(info.value)
    pvp = PVP(template, Verbalizer(PAIR_WORDS), tok, fixed + 2)
    e = pvp.encode(Example({'a': LONG, 'b': LONG}, None, 'p:1'))
    assert len(e.token_ids) == fixed + 2
    assert toks(tok, e.token_ids).count('[MASK]') == 2


def test_pattern_text_outside_the_vocabulary_is_refused(tok):
    # curly quotes are not in the Chinese BERT vocabulary (nor in the tiny one): they would be [UNK]
    template = '“{a}”和“{b}”意思相同吗？____。'
    with pytest.raises(ValueError, match='not in the vocabulary') as info:
        PVP(template, Verbalizer(PAIR_WORDS), tok, 64)
    assert repr(template) in str(info.value) and '[UNK]' in str(info.value)


def test_text_pattern_on_pairs_names_the_missing_field(tok):
    pvp = PVP('____满意。{text}', Verbalizer({'same': '很', 'different': '不'}), tok, 32)
    with pytest.raises(ValueError, match=r'dev\.json:4: example has no field text'):
        pvp.encode(Example({'a': '春天', 'b': '花开'}, 'same', 'dev.json:4'))


# ------------------------------------------------------------------ scripts/pair.py


@pytest.fixture(scope='module')
def pair_checkpoint(tmp_path_factory):
    """A tiny random BERT (2 layers, hidden 32) over the tiny vocabulary plus
    Q2's characters, written as a Google-format folder."""
    folder = tmp_path_factory.mktemp('pair_tiny')
    vocab = write_vocab(folder / 'vocab.txt', vocab_tokens() + EXTRA)
    mlm = make_mlm(len(vocab_tokens()) + len(EXTRA), folder / 'build', hidden=32, layers=2, max_position=64)
    mlm.save_checkpoint(str(folder / 'ckpt'), mlm.config, vocab)
    return folder / 'ckpt'


POOL = '我你他她们这那有在人大小上中来去说到天年日月水火山石木花草风雨春夏秋冬东西南北'


def pair_rows(n, offset=0):
    """n generated pairs: 'same' pairs repeat a sentence, 'different' ones do not."""
    rows = []
    for i in range(n):
        a = POOL[(i + offset) % 30 : (i + offset) % 30 + 3 + i % 4]
        b = a if i % 2 else POOL[(i + offset + 7) % 30 : (i + offset + 7) % 30 + 4]
        rows.append((a, b, i % 2))
    return rows


def write_fewclue(folder):
    folder.mkdir()
    for name, n in (('train_few_all.json', 8), ('dev_few_all.json', 6), ('test_public.json', 6)):
        write(
            folder / name,
            jsonl(
                [
                    {'id': i, 'sentence1': a, 'sentence2': b, 'label': str(y)}
                    for i, (a, b, y) in enumerate(pair_rows(n, len(name)))
                ]
            ),
        )
    write(
        folder / 'unlabeled.json',
        jsonl([{'id': i, 'sentence1': a, 'sentence2': b} for i, (a, b, _) in enumerate(pair_rows(5, 3))]),
    )
    return folder


def test_help_lists_pair_presets_and_verbalizer_flags():
    result = run_script('pair.py', '--help')
    assert result.returncode == 0, result.stderr
    text = flat(result.stdout)
    for name, template in PAIR_PATTERNS.items():
        assert '%s = %s' % (name, template) in text
    for names in ('train_few_all.json, train.json, train.tsv, train.txt', 'unlabeled.json, unlabeled.tsv'):
        assert names in text
    assert '--label-words' in text and '--aggregation {sum,mean,max}' in text


def test_pair_requires_data_dir():
    result = run_script('pair.py', '--mode', 'zero-shot')
    assert result.returncode == 2 and '--data-dir is required' in result.stderr


def test_pair_semi_supervised_fewclue_files(pair_checkpoint, tmp_path):
    data, out = write_fewclue(tmp_path / 'bustm'), tmp_path / 'out'
    result = run_script(
        'pair.py',
        '--checkpoint-dir',
        pair_checkpoint,
        '--data-dir',
        data,
        '--mode',
        'semi-supervised',
        '--steps',
        2,
        '--eval-every',
        2,
        '--batch-size',
        4,
        '--maxlen',
        32,
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(labeled 8, unlabeled 5), valid 6, test 6' in result.stdout
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['pattern'] == {
        'pattern': PAIR_PATTERNS['Q1'],
        'label_words': PAIR_WORDS,
        'aggregation': 'sum',
        'length_norm': False,
        'maxlen': 32,
        'windows': False,
    }
    assert len(results['evaluations']) == 1 and results['evaluations'][0]['loss'] > 0
    assert results['valid'] == max(results['zero_shot']['valid'], results['evaluations'][0]['valid'])
    assert json.loads((out / 'pvp.json').read_text(encoding='utf-8'))['pattern'] == PAIR_PATTERNS['Q1']


def test_pair_zero_shot_tsv_files_q2_and_label_words(pair_checkpoint, tmp_path):
    data, out = tmp_path / 'lcqmc', tmp_path / 'out'
    data.mkdir()
    for split, n in (('train', 10), ('dev', 4), ('test', 5)):
        write(data / ('%s.tsv' % split), ''.join('%s\t%s\t%d\n' % row for row in pair_rows(n)))
    result = run_script(
        'pair.py',
        '--checkpoint-dir',
        pair_checkpoint,
        '--data-dir',
        data,
        '--mode',
        'zero-shot',
        '--pattern',
        'Q2',
        '--label-words',
        '{"same": "是", "different": ["不"]}',
        '--aggregation',
        'max',
        '--maxlen',
        40,
        '--out',
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(labeled 0, unlabeled 0), valid 4, test 5' in result.stdout
    pvp = json.loads((out / 'pvp.json').read_text(encoding='utf-8'))
    # the labels keep the task's order; one-character words give a one-token slot
    assert pvp == {
        'pattern': PAIR_PATTERNS['Q2'],
        'label_words': {'different': ['不'], 'same': ['是']},
        'aggregation': 'max',
        'length_norm': False,
        'maxlen': 40,
        'windows': False,
    }


def test_pair_maxlen_below_the_pattern_fails_at_start_up(pair_checkpoint, tmp_path):
    data = write_fewclue(tmp_path / 'bustm')
    result = run_script(
        'pair.py',
        '--checkpoint-dir',
        pair_checkpoint,
        '--data-dir',
        data,
        '--pattern',
        'Q2',
        '--maxlen',
        12,
        '--out',
        tmp_path / 'out',
    )
    assert result.returncode != 0
    assert "maxlen 12 leaves no room for text in pattern '%s'" % PAIR_PATTERNS['Q2'] in result.stderr
    assert not (tmp_path / 'out').exists()  # nothing was built or written


def test_pair_missing_split_file_is_named(pair_checkpoint, tmp_path):
    data = write_fewclue(tmp_path / 'bustm')
    (data / 'dev_few_all.json').unlink()
    result = run_script('pair.py', '--checkpoint-dir', pair_checkpoint, '--data-dir', data, '--mode', 'zero-shot')
    assert result.returncode == 2
    assert 'error: %s has none of' % data in result.stderr
    assert 'has none of dev_few_all.json, dev.json, dev.tsv, dev.txt' in result.stderr
