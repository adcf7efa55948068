"""Any task from files and flags: pet-keras train / label-words (pet_keras.taskfile, pet_keras.runner)
and predict's --fields, stdin and id copying, on a tiny checkpoint."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bert4keras.tokenizers import Tokenizer

from pet_keras import cli, commands, runner, taskfile
from pet_keras.config import TaskSpec
from pet_keras.data import Dataset

REPO = Path(__file__).resolve().parents[1]
PATTERN = '这是一个____新闻{content}'
# label_des-style names of 1, 2 and 3 tokens... and one the tiny vocabulary cannot spell
ROWS = [
    ('我们的大国', 'news_sports'),
    ('房地产的前后', '房地产'),
    ('财经开会', '财经'),
    ('天地水火', 'news_sports'),
    ('他在家里', '房地产'),
    ('工业发电', '财经'),
    ('春夏', 'news_sports'),
    ('大小多少', '房地产'),
]
SPORTS = '{"news_sports": ["体育"]}'


def write_jsonl(path, rows, ids=False):
    lines = [
        json.dumps(dict({'id': 'r%d' % i} if ids else {}, content=text, label_des=label), ensure_ascii=False)
        for i, (text, label) in enumerate(rows)
    ]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return str(path)


@pytest.fixture
def files(tmp_path):
    train = write_jsonl(tmp_path / 'train.jsonl', ROWS)
    with open(train, 'a', encoding='utf-8') as f:  # a blank line and an empty text: skipped and counted
        f.write('\n{"content": " ", "label_des": "财经"}\n')
    return {
        'train': train,
        'valid': write_jsonl(tmp_path / 'dev.jsonl', ROWS[:4]),
        'test': write_jsonl(tmp_path / 'test.jsonl', ROWS[4:]),
        'dir': tmp_path,
    }


def flags(files, checkpoint, *more):
    return [
        '--train',
        files['train'],
        '--valid',
        files['valid'],
        '--test',
        files['test'],
        '--pattern',
        PATTERN,
        '--label-field',
        'label_des',
        '--checkpoint-dir',
        str(checkpoint['dir']),
        '--maxlen',
        '32',
        '--batch-size',
        '4',
        *more,
    ]


def test_few_shot_end_to_end_then_predict(files, tiny_checkpoint, monkeypatch, capsys):
    out = files['dir'] / 'run'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'pet_keras.commands',
            'train',
            *flags(
                files, tiny_checkpoint, '--label-words', SPORTS, '--steps', '2', '--eval-every', '2', '--out', str(out)
            ),
        ],
        cwd=str(files['dir']),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'train %s: 8 examples, 2 rows skipped' % files['train'] in result.stdout
    assert '(labeled 8, unlabeled 0), valid 4, test 4' in result.stdout
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['settings']['mode'] == 'few-shot' and len(results['evaluations']) == 1
    # the given word for news_sports; the others are their own names, in order of appearance
    assert results['pattern']['label_words'] == {'news_sports': ['体育'], '房地产': ['房地产'], '财经': ['财经']}

    monkeypatch.setattr(
        sys,
        'stdin',
        io.TextIOWrapper(io.BytesIO('{"id": 7, "content": "春夏秋冬"}\n\n{"id": "x", "content": "房地产"}\n'.encode())),
    )
    assert commands.main(['predict', '--model-dir', str(out), '--input', '-', '--format', 'jsonl']) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line['id'] for line in lines] == [7, 'x'] and lines[1]['content'] == '房地产'
    assert set(lines[0]['probabilities']) == {'news_sports', '房地产', '财经'}
    assert '2 predictions (jsonl input stdin, 1 blank or empty rows skipped)' in captured.err

    body = files['dir'] / 'body.jsonl'
    body.write_text('{"body": "天地"}\n', encoding='utf-8')
    assert commands.main(['predict', '--model-dir', str(out), '--input', str(body), '--fields', 'content=body']) == 0
    row = json.loads(capsys.readouterr().out)
    assert row['body'] == '天地' and set(row) == {'body', 'prediction', 'probabilities'}  # the input row as it was


def test_task_file_gives_the_flags_run(files, tiny_checkpoint, tmp_path):
    os.makedirs(tmp_path / 'tasks')
    spec = {
        'train': '../train.jsonl',
        'valid': '../dev.jsonl',
        'test': '../test.jsonl',
        'pattern': PATTERN,
        'label_field': 'label_des',
        'label_words': json.loads(SPORTS),
        'mode': 'zero-shot',
        'maxlen': 32,
        'checkpoint_dir': str(tiny_checkpoint['dir']),
        'batch_size': 4,
        'calibrate': True,
    }
    (tmp_path / 'tasks' / 'news.json').write_text(json.dumps(spec, ensure_ascii=False), encoding='utf-8')
    p = commands.parser()
    command = ['train', '--task', str(tmp_path / 'tasks' / 'news.json'), '--mode', 'few-shot']
    from_file = p.parse_args(
        command[:1] + taskfile.task_file_flags(command[2], cli.long_flags(p, 'train')) + command[1:]
    )
    from_flags = p.parse_args(['train'] + flags(files, tiny_checkpoint, '--label-words', SPORTS, '--calibrate'))
    assert from_file.train == files['train']  # relative to the task file
    assert from_file.mode == 'few-shot'  # the command line overrides the file
    assert dict(vars(from_file), task=None) == vars(from_flags)


def test_several_patterns_run_full_pet(files, tiny_checkpoint, capsys):
    out = files['dir'] / 'full'
    second = '{content}这是____新闻'
    run = flags(files, tiny_checkpoint, '--label-words', SPORTS, '--steps', '2', '--eval-every', '2', '--out', str(out))
    assert commands.main(['train', *run, '--pattern', second]) == 0
    results = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert results['settings']['patterns'] == [PATTERN, second]
    (generation,) = results['generations']
    assert set(generation) == {'generation', 'labeled', PATTERN, second, 'ensemble'}
    assert 0 <= results['distilled']['test'] <= 1
    for folder in ('generation-0/pattern-0', 'generation-0/pattern-1', 'distilled'):
        assert (out / folder / 'results.json').is_file()
    assert (
        json.loads((out / 'generation-0' / 'pattern-1' / 'pvp.json').read_text(encoding='utf-8'))['pattern'] == second
    )
    assert '| distilled classifier |' in capsys.readouterr().out


def test_ensemble_flags_need_several_patterns(files, tiny_checkpoint, capsys):
    with pytest.raises(SystemExit) as e:
        commands.main(['train', *flags(files, tiny_checkpoint, '--generations', '1', '--out', str(files['dir'] / 'r'))])
    assert e.value.code == 2
    assert 'error: --generations: for an ensemble, which needs --pattern given several times' in capsys.readouterr().err
    assert not (files['dir'] / 'r').exists()


def test_task_file_patterns_and_the_command_line_pattern(tmp_path, capsys):
    spec = {'train': 'train.jsonl', 'pattern': ['____{text}', '{text}____']}
    (tmp_path / 'news.json').write_text(json.dumps(spec), encoding='utf-8')
    p = commands.parser()
    from_file = taskfile.task_file_flags(str(tmp_path / 'news.json'), cli.long_flags(p, 'train'))
    assert [flag for flag in from_file if flag.startswith('--pattern')] == [
        '--pattern=____{text}',
        '--pattern={text}____',
    ]
    assert p.parse_args(['train'] + from_file).pattern == spec['pattern']
    # a --pattern on the command line replaces the file's (one pattern: --generations is refused)
    with pytest.raises(SystemExit):
        commands.main(['train', '--task', str(tmp_path / 'news.json'), '--pattern', '____{text}', '--generations', '1'])
    assert 'error: --generations: for an ensemble' in capsys.readouterr().err


def test_bad_task_file_is_named(tmp_path, capsys):
    (tmp_path / 't.json').write_text('[1]', encoding='utf-8')
    with pytest.raises(SystemExit) as exit_:
        commands.main(['train', '--task', str(tmp_path / 't.json')])
    assert exit_.value.code == 2
    assert 't.json: expected a JSON object' in capsys.readouterr().err


def test_labels_and_partial_label_words(tiny_checkpoint):
    tokenizer = Tokenizer(tiny_checkpoint['dict_path'], do_lower_case=True)
    data = {'train': [SimpleNamespace(label=label) for _, label in ROWS]}
    assert taskfile.task_labels(data, {}) == ['news_sports', '房地产', '财经']
    assert taskfile.task_labels(data, {'财经': '经', '房地产': '房', 'news_sports': '体'}) == [
        '财经',
        '房地产',
        'news_sports',
    ]
    words = {'news_sports': ['体育'], '房地产': '房地产', '财经': '财经'}
    task = TaskSpec('news', '____{text}', words, Dataset(), named_labels=('房地产', '财经'))
    pvp = runner.task_pvp(task, tokenizer)
    assert pvp.verbalizer.label_words == {'news_sports': ['体育'], '房地产': ['房地产'], '财经': ['财经']}
    words['news_sports'] = 'news_sports'
    named = TaskSpec('news', '____{text}', words, Dataset(), named_labels=('news_sports',))
    with pytest.raises(ValueError, match="label 'news_sports' .*not a word the vocabulary spells whole"):
        runner.task_pvp(named, tokenizer)


def test_unspellable_label_is_one_clear_error(files, tiny_checkpoint, capsys):
    with pytest.raises(SystemExit) as e:
        commands.main(
            ['train', *flags(files, tiny_checkpoint, '--mode', 'zero-shot', '--out', str(files['dir'] / 'run'))]
        )
    err = capsys.readouterr().err
    message = err.strip().splitlines()[-1]
    assert e.value.code == 2 and message.startswith('error: label ') and 'Traceback' not in err
    assert "'news_sports'" in message and '--label-words' in message and '房地产' not in message
    assert not (files['dir'] / 'run').exists()


def test_tsv_columns_and_counts(tmp_path, capsys):
    path = tmp_path / 'train.tsv'
    path.write_text('1\t春夏\t体育\n2\t\t财经\n\n3\t房地产\t房地产\n', encoding='utf-8')
    data = taskfile.read_task_files({'train': str(path)}, ['sentence'], 'id,sentence,label', 'label')['train']
    assert [(e.fields, e.label) for e in data] == [({'sentence': '春夏'}, '体育'), ({'sentence': '房地产'}, '房地产')]
    assert 'train %s: 2 examples, 2 rows skipped' % path in capsys.readouterr().out
    with pytest.raises(ValueError, match='needs --columns'):
        taskfile.read_split(str(path), ['sentence'], None, 'label')
    other = tmp_path / 'train.data'  # any extension is TSV when --columns names the columns
    other.write_text('春夏\t体育\n', encoding='utf-8')
    assert [(e.fields, e.label) for e in taskfile.read_split(str(other), ['sentence'], 'sentence,label', 'label')] == [
        ({'sentence': '春夏'}, '体育')
    ]
    with pytest.raises(ValueError, match='no column for'):
        taskfile.read_split(str(path), ['text'], 'id,sentence,label', 'label')


def test_classifier_folder_predicts(files, tiny_checkpoint, capsys):
    out = files['dir'] / 'classifier'
    assert (
        commands.main(
            [
                'train',
                *flags(
                    files,
                    tiny_checkpoint,
                    '--mode',
                    'classifier',
                    '--steps',
                    '2',
                    '--eval-every',
                    '2',
                    '--out',
                    str(out),
                ),
            ]
        )
        == 0
    )
    tsv = files['dir'] / 'in.tsv'
    tsv.write_text('a1\t春夏\nb2\t房地\n', encoding='utf-8')
    capsys.readouterr()
    assert commands.main(['predict', '--model-dir', str(out), '--input', str(tsv), '--fields', 'id,content']) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line['id'] for line in lines] == ['a1', 'b2']
    assert set(lines[0]['probabilities']) == {'news_sports', '房地产', '财经'}  # unspellable names are fine here


def test_label_words_json_is_accepted_by_train(files, tiny_checkpoint, capsys):
    words = files['dir'] / 'words.json'
    assert (
        commands.main(
            [
                'label-words',
                '--train',
                files['train'],
                '--pattern',
                PATTERN,
                '--label-field',
                'label_des',
                '--checkpoint-dir',
                str(tiny_checkpoint['dir']),
                '--maxlen',
                '32',
                '--top-k',
                '2',
                '--out',
                str(words),
            ]
        )
        == 0
    )
    found = json.loads(words.read_text(encoding='utf-8'))
    assert list(found) == ['news_sports', '房地产', '财经'] and all(len(w) == 2 for w in found.values())
    assert 'label' in capsys.readouterr().out
    out = files['dir'] / 'zero'
    assert (
        commands.main(
            [
                'train',
                *flags(files, tiny_checkpoint, '--mode', 'zero-shot', '--label-words', str(words), '--out', str(out)),
            ]
        )
        == 0
    )
    assert json.loads((out / 'pvp.json').read_text(encoding='utf-8'))['label_words'] == found
