"""Property-based tests (Hypothesis): the readers of pet_keras.data on random
lines, bytes, encodings and lengths raise nothing but their documented
ValueError naming the file and line; PVP.encode keeps every literal and
mask token of random patterns and never exceeds maxlen."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import json
import os
import re
import tempfile

from hypothesis import given, settings, strategies as st

from pet_keras.data import Example, read_jsonl, read_tsv
from pet_keras.presets import SENTIMENT_LABELS, read_news, read_pairs
from pet_keras.pattern import PVP
from tiny import CHINESE, make_tokenizer

SMALL = settings(max_examples=60, deadline=None)

# a line: text in any encoding (undecodable as UTF-8 for some), raw bytes, or JSON-ish text
texts = st.text(st.characters(blacklist_categories=('Cs',)), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
json_rows = st.dictionaries(
    st.sampled_from(['text', 'sentence', 'sentence1', 'sentence2', 'label', 'label_desc', 'label_name', 'other']),
    json_values,
    max_size=5,
).map(json.dumps)
tsv_rows = st.lists(st.one_of(texts, st.sampled_from(['0', '1', ' 1 ', 'news_sports', '体育'])), max_size=4).map(
    '\t'.join
)
lines = st.one_of(texts, tsv_rows, json_rows)
encodings = st.sampled_from(['utf-8', 'utf-8-sig', 'gbk', 'utf-16', 'latin-1'])


@st.composite
def files(draw):
    """The bytes of a file: lines in one encoding (unencodable characters replaced), perhaps with raw bytes
    among them, joined by \\n or \\r\\n, with or without a last newline."""
    encoding = draw(encodings)
    parts = [
        draw(st.binary(max_size=20)) if draw(st.integers(0, 9)) == 0 else line.encode(encoding, 'replace')
        for line in draw(st.lists(lines, max_size=8))
    ]
    return draw(st.sampled_from([b'\n', b'\r\n'])).join(parts) + draw(st.sampled_from([b'', b'\n']))


READERS = {
    'sentiment tsv': lambda path: read_tsv(path, SENTIMENT_LABELS),
    'unlabeled tsv': lambda path: read_tsv(path, labeled=False),
    'pair tsv': lambda path: read_pairs(path),
    'pair jsonl': lambda path: read_pairs(path + '.json'),
    'news jsonl': lambda path: read_news(path + '.json'),
    'unlabeled news': lambda path: read_news(path + '.json', labeled=False),
    'jsonl, raw labels': lambda path: read_jsonl(path + '.json', {'text': ('text', 'sentence')}, 'label'),
}


@SMALL
@given(content=files(), reader=st.sampled_from(sorted(READERS)))
def test_readers_raise_only_file_and_line_errors(content, reader):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'data')
        for name in (path, path + '.json'):
            with open(name, 'wb') as f:
                f.write(content)
        try:
            data = READERS[reader](path)
        except ValueError as e:  # the only documented error: it names the file and the line
            assert re.match(r'%s(\.json)?:\d+: ' % re.escape(path), str(e)), str(e)
            return
        rows = content.count(b'\n') + (not content.endswith(b'\n'))
        assert len(data) + data.skipped <= rows and data.path.startswith(path)
        for example in data:
            assert all(isinstance(v, str) and v and v == v.strip() for v in example.fields.values())
            assert re.fullmatch(r'%s(\.json)?:\d+' % re.escape(path), example.source)
            assert example.label is None or isinstance(example.label, str)


TOK = make_tokenizer()
CHARS = ''.join(dict.fromkeys(c for c in CHINESE if c not in '{}_'))
literals = st.text(st.sampled_from(CHARS), max_size=6)
field_texts = st.text(st.sampled_from(CHARS + ' '), max_size=80)
WORDS = {'positive': ['很'], 'negative': ['不']}
PAIR = {'same': ['是的'], 'different': ['不是']}


@st.composite
def patterns(draw):
    """(template, fields, verbalizer): the slot before, after or between the fields, one text or a pair."""
    pair = draw(st.booleans())
    fields = ['a', 'b'] if pair else ['text']
    pieces = ['{%s}' % name for name in fields]
    pieces.insert(draw(st.integers(0, len(pieces))), '____')  # prefix, infix or suffix slot
    template = ''.join(draw(literals) + piece for piece in pieces) + draw(literals)
    return template, fields, PAIR if pair else WORDS


def is_within(part, whole, start):
    """The index after ``part`` found in ``whole`` from ``start`` (in order), or -1."""
    for i in range(start, len(whole) - len(part) + 1):
        if whole[i : i + len(part)] == part:
            return i + len(part)
    return -1


@SMALL
@given(pattern=patterns(), maxlen=st.integers(8, 64), data=st.data())
def test_encode_keeps_the_pattern_and_the_slot_within_maxlen(pattern, maxlen, data):
    template, fields, words = pattern
    try:
        pvp = PVP(template, words, TOK, maxlen)
    except ValueError as e:
        assert 'leaves no room for text' in str(e)
        return
    example = Example({name: data.draw(field_texts) for name in fields}, None, 'drawn:1')
    encoded = pvp.encode(example)
    ids = encoded.token_ids
    assert len(ids) <= maxlen and len(encoded.segment_ids) == len(ids)
    assert ids[0] == TOK._token_start_id and ids[-1] == TOK._token_end_id
    assert [ids[i] for i in encoded.slots] == [TOK._token_mask_id] * pvp.slot_length
    assert ids.count(TOK._token_mask_id) == pvp.slot_length
    # every literal's tokens, in the pattern's order
    position = 1
    for kind, text in pvp.pattern.parts:
        if kind == 'literal':
            position = is_within(pvp.text_ids(text), ids, position)
            assert position >= 0, (template, text, ids)
    # a text that fits is kept whole
    full = sum(len(pvp.text_ids(example.fields[name])) for name in fields)
    if len(ids) < maxlen:
        assert len(ids) == maxlen - pvp._room + full
