"""pet_keras.data: readers with file:line errors, and the labeled/unlabeled split."""

import pet_keras  # noqa: F401  (first: it sets up TensorFlow/Keras for bert4keras)

import json

import pytest

from pet_keras.data import Dataset, Example, read_jsonl, read_tsv, split_labeled
from pet_keras.presets import SENTIMENT_LABELS, read_news


def write(path, text, encoding='utf-8'):
    path.write_bytes(text.encode(encoding))
    return str(path)


# ------------------------------------------------------------------ read_tsv


def test_read_tsv_maps_labels_and_skips_empty_rows(tmp_path):
    path = write(
        tmp_path / 'train.data',
        '很满意\t1\n'
        '\n'
        '   \n'
        '不好，不满意\t0\n'
        '\t1\n'  # empty text
        '  \t0\n'  # whitespace text
        '有\t制表\t符\t1\n'  # the label is after the last tab
        '感觉如何 \t 0 \r\n',
    )
    data = read_tsv(path, SENTIMENT_LABELS)
    assert isinstance(data, Dataset)
    assert [e.fields['text'] for e in data] == ['很满意', '不好，不满意', '有\t制表\t符', '感觉如何']
    assert [e.label for e in data] == ['positive', 'negative', 'positive', 'negative']
    assert data.skipped == 4
    assert [e.source for e in data] == ['%s:%d' % (path, n) for n in (1, 4, 7, 8)]


def test_read_tsv_without_label_names_keeps_raw_labels(tmp_path):
    data = read_tsv(write(tmp_path / 'a.tsv', '好\tx\n不好\ty\n'))
    assert [e.label for e in data] == ['x', 'y']
    assert data.skipped == 0


def test_read_tsv_bom_is_dropped(tmp_path):
    data = read_tsv(write(tmp_path / 'a.tsv', '\ufeff好\t1\n'), SENTIMENT_LABELS)
    assert data[0].fields['text'] == '好'


def test_read_tsv_missing_tab(tmp_path):
    path = write(tmp_path / 'bad.tsv', '好\t1\n没有制表符 1\n')
    with pytest.raises(ValueError) as e:
        read_tsv(path, SENTIMENT_LABELS)
    assert '%s:2' % path in str(e.value)
    assert 'tab' in str(e.value)


def test_read_tsv_unknown_label(tmp_path):
    path = write(tmp_path / 'bad.tsv', '好\t1\n\n坏\t2\n')
    with pytest.raises(ValueError) as e:
        read_tsv(path, SENTIMENT_LABELS)
    message = str(e.value)
    assert '%s:3' % path in message
    assert "'2'" in message and "'0'" in message and "'1'" in message


def test_gbk_file_is_refused_with_file_line_and_encoding(tmp_path):
    path = tmp_path / 'gbk.tsv'
    path.write_bytes('很好\t1\n'.encode('utf-8') + '不满意\t0\n'.encode('gbk'))
    with pytest.raises(ValueError) as e:
        read_tsv(str(path), SENTIMENT_LABELS)
    message = str(e.value)
    assert '%s:2' % path in message
    assert 'UTF-8' in message
    json_path = tmp_path / 'gbk.json'
    json_path.write_bytes(b'{"text": "ok"}\n' + '{"text": "不满意"}\n'.encode('gbk'))
    with pytest.raises(ValueError, match=r'gbk\.json:2: .*UTF-8'):
        read_jsonl(str(json_path), {'text': 'text'}, labeled=False)


# ---------------------------------------------------------------- read_jsonl

FEWCLUE_ROWS = [
    {'label': '103', 'label_desc': 'news_sports', 'sentence': '体育新闻', 'keywords': '', 'id': 1},
    {'label': '104', 'label_desc': 'news_finance', 'sentence': '财经如何', 'keywords': '', 'id': 2},
]
REFERENCE_ROWS = [{'text': '新闻体育', 'label_name': '体育'}, {'text': '理想财经', 'label_name': '财经'}]


def jsonl(rows):
    return ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows)


def test_read_news_fewclue_form(tmp_path):
    path = write(tmp_path / 'train_few_all.json', jsonl(FEWCLUE_ROWS))
    data = read_news(path)
    assert [(e.fields['text'], e.label) for e in data] == [('体育新闻', '体育'), ('财经如何', '财经')]
    assert data[1].source == '%s:2' % path


def test_read_news_reference_form(tmp_path):
    path = write(tmp_path / 'train.json', jsonl(REFERENCE_ROWS))
    data = read_news(path)
    assert [(e.fields['text'], e.label) for e in data] == [('新闻体育', '体育'), ('理想财经', '财经')]


def test_read_news_unlabeled(tmp_path):
    rows = [{'sentence': '体育新闻', 'id': 1}, {'sentence': '  ', 'id': 2}, {'sentence': '财经', 'id': 3}]
    data = read_news(write(tmp_path / 'unlabeled.json', jsonl(rows) + '\n'), labeled=False)
    assert [e.fields['text'] for e in data] == ['体育新闻', '财经']
    assert all(e.label is None for e in data)
    assert data.skipped == 2


def test_read_news_missing_label_when_labeled(tmp_path):
    path = write(tmp_path / 'x.json', jsonl(REFERENCE_ROWS + [{'text': '无标签'}]))
    with pytest.raises(ValueError, match=r'x\.json:3: no label'):
        read_news(path)


def test_read_news_unknown_label(tmp_path):
    path = write(tmp_path / 'x.json', jsonl([{'text': '无', 'label_name': '天气'}]))
    with pytest.raises(ValueError) as e:
        read_news(path)
    assert '%s:1' % path in str(e.value) and '天气' in str(e.value)


def test_read_jsonl_malformed_line(tmp_path):
    path = write(tmp_path / 'x.json', jsonl(REFERENCE_ROWS) + '{"text": "坏", \n')
    with pytest.raises(ValueError) as e:
        read_news(path)
    assert '%s:3' % path in str(e.value)
    assert 'JSON' in str(e.value)


def test_read_jsonl_not_an_object(tmp_path):
    path = write(tmp_path / 'x.json', '["a", "b"]\n')
    with pytest.raises(ValueError, match=r'x\.json:1: expected a JSON object'):
        read_jsonl(path, {'text': 'text'}, labeled=False)


def test_read_jsonl_pair_fields_and_missing_field(tmp_path):
    path = write(tmp_path / 'pairs.json', jsonl([{'s1': '好', 's2': '不好', 'y': 1}]))
    data = read_jsonl(path, {'a': 's1', 'b': ('sentence2', 's2')}, 'y', {'1': 'same'})
    assert data == [Example({'a': '好', 'b': '不好'}, 'same', '%s:1' % path)]
    with pytest.raises(ValueError, match=r'pairs\.json:1: no b field'):
        read_jsonl(path, {'a': 's1', 'b': 'missing'}, 'y')


# ------------------------------------------------------------- split_labeled


def examples(n):
    return [Example({'text': 'text %d' % i}, 'positive' if i % 2 else 'negative', 'f:%d' % (i + 1)) for i in range(n)]


def test_split_first_rows_without_seed():
    data = examples(50)
    labeled, unlabeled = split_labeled(data, 0.1)
    assert labeled == data[:5]
    assert [e.fields for e in unlabeled] == [e.fields for e in data[5:]]
    assert [e.source for e in unlabeled] == [e.source for e in data[5:]]
    assert all(e.label is None for e in unlabeled)


def test_split_seeded_is_reproducible_and_seed_dependent():
    data = examples(100)
    a = split_labeled(data, 0.2, seed=1)
    b = split_labeled(data, 0.2, seed=1)
    c = split_labeled(data, 0.2, seed=2)
    assert a == b
    assert [e.source for e in a[0]] != [e.source for e in c[0]]
    assert [e.source for e in a[0]] != [e.source for e in data[:20]]
    for labeled, unlabeled in (a, c):
        assert len(labeled) == 20 and len(unlabeled) == 80
        # a partition of the rows, each in file order, labels kept only on the labeled side
        assert sorted(e.source for e in labeled + unlabeled) == sorted(e.source for e in data)
        assert [e.source for e in labeled] == sorted((e.source for e in labeled), key=lambda s: int(s[2:]))
        assert all(e in data for e in labeled)
        assert all(e.label is None for e in unlabeled)


@pytest.mark.parametrize(
    'n, fraction, expected', [(168, 0.01, 1), (16883, 0.01, 168), (10, 0.25, 2), (3, 1, 3), (7, 0.5, 3)]
)
def test_split_labeled_count(n, fraction, expected):
    labeled, unlabeled = split_labeled(examples(n), fraction, seed=0)
    assert len(labeled) == expected == max(1, int(n * fraction))
    assert len(unlabeled) == n - expected


@pytest.mark.parametrize('fraction', [0, -0.1, 1.5])
def test_split_fraction_validated(fraction):
    with pytest.raises(ValueError, match='fraction'):
        split_labeled(examples(10), fraction)
