"""Backend CPU per single-row autocommit UPDATE: no trigger, the native audit
trigger, the PL/pgSQL to_jsonb audit (bench/audit/reference.sql), side by
side on one cluster (issue 10, must-show 4).

One connection per design, each UPDATE sent as a simple query (as psql sends
it). A round is one block of --block statements per design, the designs'
order rotating from round to round; a block's cost is the growth of its
backend's on-CPU time (/proc/PID/schedstat, nanoseconds) divided by the
statements. Blocks of the designs run back to back, so drift of the machine
hits them alike; every round is printed, then the median of the rounds'
ratios and the ratio of the designs' medians.
"""
import argparse
import statistics

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--rows", type=int, default=300000)
ap.add_argument("--rounds", type=int, default=30)
ap.add_argument("--block", type=int, default=1000)
args = ap.parse_args()
DESIGNS = ["none", "native", "plpgsql"]


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


conns, pids = {}, {}
for d in DESIGNS:
    c = psycopg.connect(args.dsn, autocommit=True)
    pids[d] = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    conns[d] = c


def block(design, round_no):
    pg = conns[design].pgconn
    start = cpu_ns(pids[design])
    for i in range(args.block):
        row = (i * 7919 + round_no * 15485863) % args.rows + 1
        res = pg.exec_(f"UPDATE w_{design} SET counter = counter + 1 WHERE id = {row}".encode())
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK or res.command_tuples != 1:
            raise SystemExit(f"{design}: UPDATE failed: {pg.error_message.decode()}")
    return (cpu_ns(pids[design]) - start) / args.block / 1000.0   # us per statement


for d in DESIGNS:   # warm each backend: its first statements load caches
    block(d, 0)
cost = {d: [] for d in DESIGNS}
for r in range(1, args.rounds + 1):
    order = DESIGNS[r % 3:] + DESIGNS[:r % 3]
    for d in order:
        cost[d].append(block(d, r))
    print(f"round {r:2d} (order {' '.join(order)}): " +
          "  ".join(f"{d} {cost[d][-1]:6.1f} us" for d in DESIGNS) +
          "  " + "  ".join(f"{d}/none {cost[d][-1] / cost['none'][-1]:.3f}x" for d in DESIGNS[1:]), flush=True)

print(f"# {args.rounds} rounds of {args.block} statements per design, {args.rows}-row tables")
for d in DESIGNS:
    med = statistics.median(cost[d])
    ratios = [a / b for a, b in zip(cost[d], cost["none"])]
    print(f"{d:8s} median {med:6.1f} us  ratio of medians {med / statistics.median(cost['none']):.3f}x  "
          f"median of the rounds' ratios {statistics.median(ratios):.3f}x  "
          f"(rounds' ratios {min(ratios):.3f}-{max(ratios):.3f}x)")
