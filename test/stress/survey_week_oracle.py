"""The survey week, checked against an independent oracle (Python zoneinfo).

README, Survey steps: a step is stored with week_start, "the local Monday (a
date) of the week containing completed_at in the session's zone", and
get_weekly_survey_steps(s, w) returns the session's rows of the week (in the
session's zone) containing w. The oracle is exactly that: the local date of
the instant in the IANA zone (zoneinfo, the same tzdata), minus its weekday;
a legacy name that tzdata 2024b made a link (CET, EST5EDT, ...) is its target.

Instants: every offset change of the zones below between 1985 and 2035 (and
one second, minutes and an hour either side), the local midnights of the days
around each change, the days around year ends (2015, 2020, 2026, 2032 and
2037 have an ISO week 53), hourly ones over four spring and autumn months,
and random instants from 1850 to 2200. Zones: every IANA name set_session_timezone
accepts for survey_week_start; for the upserts and the weekly query, zones
with DST changes at midnight, half- and quarter-hour offsets, the southern
hemisphere, negative DST, a skipped day (Pacific/Apia 2011), changed rules,
and every name that is also a time zone abbreviation (CET, EET, MET, WET, ...).

Checks:
  - survey_week_start(at, zone) = oracle, for every zone and instant;
  - rows written by upsert_survey_steps (batch) and upsert_survey_step
    (single) have week_start = oracle, and the final rows are what the
    oracle's own replay of the upserts gives (last write per session, week
    and step wins, values and completed_at included);
  - get_weekly_survey_steps(s, w) returns exactly the oracle's rows of the
    week containing w;
  - after a zone change, old rows stay and new writes and the weekly query
    use the new zone.
Prints what differs; exit 1 on any difference.
"""
import argparse
import datetime as dt
import random
import sys
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

UTC = dt.timezone.utc
ap = argparse.ArgumentParser()
ap.add_argument("--dsn", required=True)
ap.add_argument("--seed", type=int, default=20261207)
args = ap.parse_args()
rnd = random.Random(args.seed)
failures = []
shown = {}


def fail(what, kind="other"):
    """Records a difference; prints the first few of each kind (a zone, a check)."""
    failures.append(what)
    shown[kind] = shown.get(kind, 0) + 1
    if shown[kind] <= 3:
        print("DIFF:", what)


# tzdata 2024b's `backward` file: these legacy names are links to these
# zones. The README says a session's week reads them as their targets on every
# system (some no longer ship the names as zones) and that
# set_session_timezone stores the target.
LINKS = {
    "CET": "Europe/Brussels", "MET": "Europe/Brussels", "EET": "Europe/Athens", "WET": "Europe/Lisbon",
    "EST": "America/Panama", "MST": "America/Phoenix", "HST": "Pacific/Honolulu",
    "EST5EDT": "America/New_York", "CST6CDT": "America/Chicago", "MST7MDT": "America/Denver",
    "PST8PDT": "America/Los_Angeles",
}


def oracle_week(at, zone):
    d = at.astimezone(ZoneInfo(LINKS.get(zone, zone))).date()
    return d - dt.timedelta(days=d.weekday())


FOCUS = [
    "America/Santiago", "America/Havana", "America/Asuncion", "Asia/Beirut", "America/Sao_Paulo",
    "Africa/Cairo", "Asia/Tehran", "Asia/Amman", "Asia/Damascus", "Asia/Gaza", "America/Godthab",
    "Asia/Kolkata", "Asia/Kathmandu", "Australia/Adelaide", "Australia/Lord_Howe", "Pacific/Chatham",
    "Pacific/Apia", "Pacific/Kiritimati", "America/St_Johns", "Europe/Berlin", "America/New_York",
    "Europe/Moscow", "Antarctica/Troll", "Europe/Dublin", "Africa/Casablanca", "Asia/Pyongyang",
    "America/Caracas", "Pacific/Tongatapu", "America/Scoresbysund", "Australia/Eucla", "UTC",
    "Pacific/Auckland", "America/Bahia_Banderas", "Asia/Dhaka", "Europe/Lisbon", "America/Mexico_City",
    "CET", "EET", "MET", "WET", "EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT", "EST", "MST", "HST", "GMT",
    "Pacific/Norfolk", "Asia/Yerevan", "America/Whitehorse",
]


def transitions(zone, start_year=1985, end_year=2035):
    """UTC instants (to the second) where the zone's offset changes."""
    z = ZoneInfo(LINKS.get(zone, zone))
    out = []
    t = dt.datetime(start_year, 1, 1, tzinfo=UTC)
    end = dt.datetime(end_year, 1, 1, tzinfo=UTC)
    step = dt.timedelta(days=3)
    prev = t.astimezone(z).utcoffset()
    while t < end:
        n = t + step
        off = n.astimezone(z).utcoffset()
        if off != prev:
            lo, hi = t, n  # offset(lo) = prev, offset(hi) = off
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if mid.astimezone(z).utcoffset() == prev:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
            prev = off
        t = n
    return out


def local_midnights(zone, day):
    """UTC instants of 00:00 local on `day` (both folds) and a second before."""
    z = ZoneInfo(LINKS.get(zone, zone))
    res = []
    for fold in (0, 1):
        m = dt.datetime(day.year, day.month, day.day, tzinfo=z, fold=fold).astimezone(UTC)
        res += [m, m - dt.timedelta(seconds=1)]
    return res


def instants_for(zone, with_transitions=True):
    pts = set()
    if with_transitions:
        for tr in transitions(zone):
            for s in (-3600, -1800, -60, -1, 0, 1, 60, 1800, 3600, 5400):
                pts.add(tr + dt.timedelta(seconds=s))
            loc = tr.astimezone(ZoneInfo(LINKS.get(zone, zone))).date()
            for k in range(-2, 3):
                pts.update(local_midnights(zone, loc + dt.timedelta(days=k)))
    # Year ends, some with an ISO week 53 (2015, 2020, 2026, 2032, 2037).
    for y in (2004, 2015, 2020, 2026, 2032, 2037):
        for k in range(-4, 5):
            pts.update(local_midnights(zone, dt.date(y, 12, 28) + dt.timedelta(days=k)))
    for _ in range(20):
        pts.add(dt.datetime(1850, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=rnd.randrange(350 * 365 * 86400)))
    return sorted(pts)


conn = psycopg.connect(args.dsn, autocommit=True)
cur = conn.cursor()
cur.execute("SET TimeZone = 'UTC'")
accepted = [r[0] for r in cur.execute(
    "SELECT name FROM pg_timezone_names WHERE name !~ '^(posix|right)/' "
    "AND lower(name) NOT IN ('localtime', 'posixrules', 'factory') ORDER BY name")]
pyzones = set()
for z in accepted:
    try:
        ZoneInfo(z)
        pyzones.add(z)
    except Exception:
        pass
pyzones |= set(LINKS)  # accepted on every system, whether or not it ships them as zones
print(f"{len(accepted)} zones accepted by set_session_timezone, {len(pyzones)} known to zoneinfo "
      f"or legacy names of the README")

# 1. survey_week_start for every accepted zone on a common set of instants,
#    and on each focus zone's own instants.
common = instants_for("UTC", with_transitions=False)
common += [dt.datetime(y, m, 1, tzinfo=UTC) + dt.timedelta(hours=h) for y in (1995, 2026)
           for m in (3, 4, 10, 11) for h in range(0, 24 * 7 * 5, 13)]
checked = 0
for zone in sorted(pyzones):
    pts = common + (instants_for(zone) if zone in FOCUS else [])
    rows = cur.execute("SELECT workflow.survey_week_start(t, %s) FROM unnest(%s::timestamptz[]) WITH ORDINALITY u(t, i) ORDER BY i",
                       (zone, pts)).fetchall()
    for at, (got,) in zip(pts, rows):
        checked += 1
        want = oracle_week(at, zone)
        if got != want:
            fail(f"survey_week_start({at.isoformat()}, {zone}) = {got}, oracle {want} "
                 f"(local {at.astimezone(ZoneInfo(LINKS.get(zone, zone))).isoformat()})", "week_start " + zone)
print(f"survey_week_start: {checked} (zone, instant) pairs checked")

# 2. Upserts and the weekly query, per focus zone, one session each.
cur.execute("DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'CORACLE%'")
steps = ["workload_today", "workload_nextweek", "connects_thisweek", "day_off_nextweek", "day_off_thisweek"]
focus = [z for z in FOCUS if z in pyzones]
for n, zone in enumerate(focus):
    with conn.transaction():  # one commit per zone (fsync is on)
        sid = f"CORACLE{n:04d}"
        cur.execute("SELECT workflow.set_session_timezone(%s, %s)", (sid, zone.lower()))
        stored_zone = cur.execute("SELECT time_zone FROM workflow.survey_sessions WHERE session_id = %s", (sid,)).fetchone()[0]
        if stored_zone != LINKS.get(zone, zone):
            fail(f"set_session_timezone({zone.lower()!r}) stored {stored_zone!r}, not {LINKS.get(zone, zone)!r}")
        pts = instants_for(zone)
        rnd.shuffle(pts)
        pts = pts[:250]
        expect = {}  # (week, step) -> (value, completed_at)
        # Half by batches of up to 50 (with duplicates), half one by one.
        half = len(pts) // 2
        i = 0
        while i < half:
            chunk = pts[i:i + rnd.randint(1, 50)]
            elems = []
            for k, at in enumerate(chunk):
                step = rnd.choice(steps)
                elems.append({"session_id": sid.lower() if k % 3 == 0 else sid, "step_name": step,
                              "value": {"i": i + k}, "completed_at": at.isoformat()})
                expect[(oracle_week(at, zone), step)] = ({"i": i + k}, at)
            cur.execute("SELECT workflow.upsert_survey_steps(%s)", (Jsonb(elems),))
            i += len(chunk)
        for at in pts[half:]:
            step = rnd.choice(steps)
            row = cur.execute("SELECT week_start FROM workflow.upsert_survey_step(%s, %s, %s, %s)",
                              (sid, step, Jsonb({"i": i}), at)).fetchone()
            if row[0] != oracle_week(at, zone):
                fail(f"upsert_survey_step {zone} {at.isoformat()}: week_start {row[0]}, oracle {oracle_week(at, zone)}",
                     "single " + zone)
            expect[(oracle_week(at, zone), step)] = ({"i": i}, at)
            i += 1
        got = {(w, s): (v, c) for w, s, v, c in cur.execute(
            "SELECT week_start, step_name, value, completed_at FROM workflow.survey_steps WHERE session_id = %s", (sid,))}
        for key in sorted(set(expect) | set(got)):
            if expect.get(key) != got.get(key):
                fail(f"{zone}: row {key}: stored {got.get(key)}, oracle {expect.get(key)}", "rows " + zone)
        # The weekly query, at every instant.
        for at in pts[::4]:
            w = oracle_week(at, zone)
            rows = cur.execute("SELECT week_start, step_name, value FROM workflow.get_weekly_survey_steps(%s, %s)",
                               (sid, at)).fetchall()
            want = sorted((w, s, v[0]) for (ww, s), v in expect.items() if ww == w)
            if [tuple(r) for r in rows] != want:
                fail(f"get_weekly_survey_steps({sid} {zone}, {at.isoformat()}) = {rows}, oracle {want}", "weekly " + zone)

# 3. A zone change moves nothing already written; later writes and reads use the new zone.
sid = "CORACLEZONE1"
at = dt.datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # Sunday in New York, Monday in Tokyo
cur.execute("SELECT workflow.set_session_timezone(%s, 'America/New_York')", (sid,))
cur.execute("SELECT workflow.upsert_survey_step(%s, 'connects', '1', %s)", (sid, at))
cur.execute("SELECT workflow.set_session_timezone(%s, 'Asia/Tokyo')", (sid,))
cur.execute("SELECT workflow.upsert_survey_steps(%s)", (Jsonb([{"session_id": sid, "step_name": "connects", "value": 2,
                                                                 "completed_at": at.isoformat()}]),))
got = sorted(cur.execute("SELECT week_start, value FROM workflow.survey_steps WHERE session_id = %s", (sid,)).fetchall())
want = [(oracle_week(at, "America/New_York"), 1), (oracle_week(at, "Asia/Tokyo"), 2)]
if got != want:
    fail(f"zone change: rows {got}, oracle {want}")
weekly = cur.execute("SELECT week_start, value FROM workflow.get_weekly_survey_steps(%s, %s)", (sid, at)).fetchall()
if weekly != [want[1]]:
    fail(f"zone change: weekly {weekly}, oracle {[want[1]]}")

cur.execute("DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'CORACLE%'")
if failures:
    print(f"FAIL: {len(failures)} differences from the oracle:",
          ", ".join(f"{k} {n}" for k, n in sorted(shown.items())))
    sys.exit(1)
print("survey week oracle: all agree")
