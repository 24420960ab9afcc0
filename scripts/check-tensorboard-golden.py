#!/usr/bin/env python3
"""Reads test/fixtures/tensorboard/events.out.tfevents.golden with TensorBoard's own EventAccumulator and
checks that its scalars are exactly metrics.jsonl's numeric fields (nested keys joined by '/', float32) at
metrics.jsonl's steps, and that the text summary is there. The suite (test/model/tensorboard.test.ts) checks
that the writer reproduces the golden byte for byte, so it needs no Python; rerun this after changing the
writer and regenerating the golden (RLHF_UPDATE_GOLDEN=1).

Usage: .venv/bin/python -m pip install tensorboard && .venv/bin/python scripts/check-tensorboard-golden.py
"""
import json
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'tensorboard')


def leaves(row, prefix=''):
    for k, v in row.items():
        if k == 'step' and not prefix:
            continue
        tag = f'{prefix}/{k}' if prefix else k
        if isinstance(v, dict):
            yield from leaves(v, tag)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield tag, v


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def main():
    rows = [json.loads(l) for l in open(os.path.join(HERE, 'metrics.jsonl')) if l.strip()]
    want = {}
    for r in rows:
        for tag, v in leaves(r):
            want.setdefault(tag, []).append((r['step'], f32(v)))
    acc = EventAccumulator(os.path.join(HERE, 'events.out.tfevents.golden'), size_guidance={'scalars': 0, 'tensors': 0})
    acc.Reload()
    got = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}
    assert got == want, f'scalars differ:\n got {got}\nwant {want}'
    texts = [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors('eval/samples')]
    assert len(texts) == 1 and texts[0][0] == 4 and 'Once upon a time' in texts[0][1], texts
    print(f'ok: {sum(len(v) for v in got.values())} scalars over {len(got)} tags and 1 text summary, read by TensorBoard {__import__("tensorboard").__version__}')


if __name__ == '__main__':
    sys.exit(main())
