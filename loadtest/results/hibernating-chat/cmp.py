# The chat A/B table: server CPU per delivery at each ramp step all six runs reached, medians of 3.
#   python3 cmp.py [DIR]   (DIR holds before-1..3/ and after-1..3/ with their latest.json)
import collections, json, os, statistics, sys
out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
data = collections.defaultdict(lambda: collections.defaultdict(dict))  # scen -> target -> run -> cpu
best = collections.defaultdict(dict)
for side in ('before', 'after'):
    for i in (1, 2, 3):
        try:
            d = json.load(open(f'{out}/{side}-{i}/latest.json'))
        except Exception as e:
            print('missing', side, i, e); continue
        for r in d['runs']:
            if not r.get('kept') or r['verdict'] == 'failed': continue
            f = r.get('figures') or {}
            t = float(r['target'] or 0)
            if f.get('cpu_ms_per_1000') is not None:
                data[r['scenario']][round(t, 4)][f'{side}-{i}'] = (f['cpu_ms_per_1000'], r['verdict'])
            if r['verdict'] == 'pass':
                best[(r['scenario'], side, i)] = max(best.get((r['scenario'], side, i), 0), f.get('per_second') or 0)
for scen in sorted(data):
    print(f'## {scen}: server CPU us per delivery (ms/1000) by step, before | after')
    for t in sorted(data[scen]):
        row = data[scen][t]
        b = [row[k][0] for k in row if k.startswith('before')]
        a = [row[k][0] for k in row if k.startswith('after')]
        if len(b) == 3 and len(a) == 3:
            mb, ma = statistics.median(b), statistics.median(a)
            print(f'  @{t}: before {mb:.3f} ({min(b):.3f}-{max(b):.3f})  after {ma:.3f} ({min(a):.3f}-{max(a):.3f})  ratio {ma/mb:.3f}  spread/median before {min(b)/mb:.2f}-{max(b)/mb:.2f}')
    for side in ('before', 'after'):
        v = [best.get((scen, side, i), 0) for i in (1, 2, 3)]
        print(f'  zero-loss rate {side}: median {statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})')
