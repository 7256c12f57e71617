#!/usr/bin/python3
"""Runs every ```sql block of README.md, in order, in ONE psql session, and
compares the output the README shows. Used by test/stress/readme_examples.sh.

  readme_examples.py README.md --db DBNAME     run and check (exit 1 on any failure)
  readme_examples.py README.md --list          print the statements and what they expect, and
                                               the convention errors (no server needed)

Convention (also in README.md, section "Tests"):
  * Every ```sql block runs, top to bottom, in one session on a fresh database
    that has the extension. Every statement must succeed unless an error is shown.
  * Shown output: the comment lines right after a statement (on the line of its
    `;`, then the following lines) of the form
        -- -> v1 | v2 | v3          one line per result row, columns split by `|`
        -- -> (no rows)             the statement returns no rows
        -- ERROR 22023: message     the statement fails with this SQLSTATE and message
                                    (indented `--    ...` lines continue the message)
    A psql-style header line (`--  col1 | col2`) directly above the `-- ->` lines is
    checked against the column names. A remark may follow a value after two or
    more spaces, in parentheses: `-- -> t  (a second call: f)`. A statement with no
    shown output only has to succeed.
  * In shown values, `...` stands for any text, `<uuid>` for a UUID, `<timestamp>`
    for a timestamp (psql or JSON format), `<number>` for an integer, `<null>` for
    NULL (an empty column is NULL too); everything else must match exactly
    (surrounding spaces of a column ignored).
  * A comment on the line of a statement's `;` must be shown output; a `-- ->` or
    `-- ERROR` line anywhere else is an error (output that checks nothing).
  * A block that cannot run (it needs a second session, ...) is preceded by the
    line `<!-- readme-examples: skip (reason) -->`; at most MAX_SKIPPED (3) of them.
"""
import argparse
import csv
import io
import os
import re
import subprocess
import sys
import tempfile

SKIP_RE = re.compile(r'^\s*<!--\s*readme-examples:\s*skip\b(.*?)-->\s*$')
FENCE_RE = re.compile(r'^```\s*(\S*)\s*$')
ROW_RE = re.compile(r'^--\s*->\s?(.*)$')
ERROR_RE = re.compile(r'^--\s*ERROR\s+([0-9A-Z]{5}):\s?(.*)$')
HEADER_RE = re.compile(r'^--\s+(\S.*\|.*\S)\s*$')
REMARK_RE = re.compile(r'^(.*?\S)\s{2,}\(.*\)\s*$')
NOTIFY_RE = re.compile(r'^Asynchronous notification ".*" (with payload ".*" )?received from server process with PID \d+\.$')
MAX_SKIPPED = 3   # skipped blocks are exceptions: keep them few
PLACEHOLDERS = {
    '...': r'.*?',
    '<uuid>': r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
    '<timestamp>': r'\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:\d{2})?|Z)?',
    '<number>': r'-?\d+',
    '<null>': r'',
}
PH_SPLIT = re.compile('(' + '|'.join(re.escape(p) for p in PLACEHOLDERS) + ')')


def pattern(text):
    """A shown value -> compiled regex (placeholders expanded, the rest literal)."""
    parts = PH_SPLIT.split(text)
    return re.compile(''.join(PLACEHOLDERS.get(p, re.escape(p)) for p in parts), re.S)


class Statement:
    def __init__(self, block, line, sql):
        self.block, self.line, self.sql = block, line, sql
        self.header = None        # list of column names, or None
        self.rows = None          # list of lists of shown values, or None (not shown)
        self.error = None         # (sqlstate, message) or None
        self.expect_line = None   # README line of the shown output

    def first_line(self):
        return self.sql.strip().splitlines()[0]


class Block:
    def __init__(self, line, text_lines):
        self.line, self.text_lines = line, text_lines   # line: README line of the first SQL line


def read_blocks(path):
    """README -> (blocks, skipped) of ```sql code; each knows its README line number."""
    blocks, skipped, problems = [], [], []
    lines = open(path, encoding='utf-8').read().split('\n')
    i, skip_reason = 0, None
    while i < len(lines):
        m = SKIP_RE.match(lines[i])
        if m:
            skip_reason = (i + 1, m.group(1).strip() or 'no reason given')
            i += 1
            continue
        m = re.match(r'^\s+```\s*(sql|psql|pgsql|postgres|postgresql)\s*$', lines[i], re.I)
        if m:
            problems.append((i + 1, 'an indented ```%s block is not run: start the fence in column 1' % m.group(1)))
        m = FENCE_RE.match(lines[i])
        if m and lines[i].startswith('```'):
            lang = m.group(1).lower()
            j = i + 1
            while j < len(lines) and not lines[j].startswith('```'):
                j += 1
            if lang in ('psql', 'pgsql', 'postgres', 'postgresql'):
                problems.append((i + 1, 'a ```%s block is not run: call it ```sql' % lang))
            if lang == 'sql':
                if skip_reason:
                    skipped.append((i + 1, skip_reason[1]))
                else:
                    blocks.append(Block(i + 2, lines[i + 1:j]))
            elif skip_reason:
                problems.append((skip_reason[0], 'a skip marker not followed by a ```sql block'))
            skip_reason = None
            i = j + 1
            continue
        if skip_reason and lines[i].strip():
            problems.append((skip_reason[0], 'a skip marker not directly above a ```sql block'))
            skip_reason = None
        i += 1
    return blocks, skipped, problems


def split_statements(block):
    """One block -> [(start_line, end_line, sql text, rest of the end line)] and problems.
    Knows quotes, "identifiers", $tag$ dollar quotes, -- and /* */ comments."""
    text = '\n'.join(block.text_lines) + '\n'
    out, problems = [], []
    i, n, start = 0, len(text), None

    def line_at(pos):
        return block.line + text.count('\n', 0, pos)

    while i < n:
        c = text[i]
        if c == '-' and text.startswith('--', i):
            j = text.find('\n', i)
            i = j
            continue
        if c == '/' and text.startswith('/*', i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith('/*', i):
                    depth, i = depth + 1, i + 2
                elif text.startswith('*/', i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if c == "'" or c == '"':
            escapes = c == "'" and i > 0 and text[i - 1] in 'eE' and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == '_'))
            j = i + 1
            while j < n:
                if escapes and text[j] == '\\':
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if c == '$':
            m = re.match(r'\$([A-Za-z_][A-Za-z_0-9]*)?\$', text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = (j + len(tag)) if j >= 0 else n
                continue
        if c == ';':
            eol = text.find('\n', i)
            out.append((line_at(start), line_at(i), text[start:i + 1], text[i + 1:eol].strip()))
            start = None
            i += 1
            continue
        i += 1
    if start is not None:
        problems.append((line_at(start), 'statement without a terminating ;: ' + text[start:].strip().splitlines()[0]))
    return out, problems


def parse_row(value):
    m = REMARK_RE.match(value)
    if m:
        value = m.group(1)
    value = value.strip()
    if value == '(no rows)':
        return None
    return [v.strip() for v in re.split(r'\|', value)]


def parse(path):
    blocks, skipped, problems = read_blocks(path)
    statements = []
    for bi, block in enumerate(blocks):
        stmts, probs = split_statements(block)
        problems += probs
        consumed = set()      # block-relative indices of lines that are shown output
        for (l0, l1, sql, rest) in stmts:
            st = Statement(bi, l0, sql)
            idx = l1 - block.line          # index of the statement's last line
            attached = []                  # (readme line, comment text)
            if rest:
                if not rest.startswith('--'):
                    problems.append((l1, 'two statements on one line; put each on its own line'))
                else:
                    attached.append((l1, rest))
                    if not (ROW_RE.match(rest) or ERROR_RE.match(rest)):
                        problems.append((l1, 'a comment after the `;` must be shown output (`-- -> value` or '
                                             '`-- ERROR SQLSTATE: message`); put a remark on its own line: ' + rest))
                        attached = []
            k = idx + 1
            while k < len(block.text_lines):
                t = block.text_lines[k].strip()
                if ROW_RE.match(t) or ERROR_RE.match(t):
                    attached.append((block.line + k, t))
                elif attached and ERROR_RE.match(attached[-1][1]) and re.match(r'^--\s{2,}\S', t):
                    # an error message continued on an indented comment line
                    attached[-1] = (attached[-1][0], attached[-1][1] + ' ' + t[2:].strip())
                    consumed.add(block.line + k)
                elif (not attached and HEADER_RE.match(t) and k + 1 < len(block.text_lines)
                      and ROW_RE.match(block.text_lines[k + 1].strip())):
                    attached.append((block.line + k, t))
                else:
                    if t.startswith('--') and '->' in t:
                        problems.append((block.line + k, 'shown output must be written `-- -> v1 | v2` '
                                         '(one line per row, a header on the line above): ' + t))
                    break
                k += 1
            for (ln, t) in attached:
                consumed.add(ln)
                st.expect_line = st.expect_line or ln
                m_row, m_err = ROW_RE.match(t), ERROR_RE.match(t)
                if m_err:
                    if st.error or st.rows is not None:
                        problems.append((ln, 'a statement shows either rows or one error'))
                    st.error = (m_err.group(1), m_err.group(2).strip())
                elif m_row:
                    if st.error:
                        problems.append((ln, 'a statement shows either rows or one error'))
                    row = parse_row(m_row.group(1))
                    if st.rows is None:
                        st.rows = []
                    if row is not None:
                        st.rows.append(row)
                else:
                    st.header = [h.strip() for h in HEADER_RE.match(t).group(1).split('|')]
            statements.append(st)
        for k, raw in enumerate(block.text_lines):
            t = raw.strip()
            ln = block.line + k
            if ln not in consumed and (ROW_RE.match(t) or ERROR_RE.match(t)):
                if not any(ln == p[0] for p in problems):
                    problems.append((ln, 'shown output that belongs to no statement (it must directly follow one): ' + t))
    return blocks, skipped, statements, problems


def psql_script(statements):
    out = ['\\set QUIET 1', '\\set ON_ERROR_STOP 0', '\\pset format csv', '\\pset tuples_only off',
           '\\pset footer off', '\\set VERBOSITY default', '\\set SHOW_CONTEXT never']
    for n, st in enumerate(statements):
        out.append('\\echo @@wf-readme-begin %d' % n)
        out.append(st.sql)
        out.append('\\echo @@wf-readme-end %d :SQLSTATE :LAST_ERROR_MESSAGE' % n)
    return '\n'.join(out) + '\n'


def run_psql(script, db):
    with tempfile.NamedTemporaryFile('w', suffix='.sql', delete=False) as f:
        f.write(script)
        name = f.name
    try:
        p = subprocess.run(['psql', '-X', '-d', db, '-f', name], capture_output=True, text=True)
    finally:
        os.unlink(name)
    return p


def results(stdout):
    """psql's stdout -> {statement number: (sqlstate, error message, rows incl. header)}."""
    res, cur, buf = {}, None, []
    for raw in stdout.split('\n'):
        m = re.match(r'^@@wf-readme-begin (\d+)$', raw)
        if m:
            cur, buf = int(m.group(1)), []
            continue
        m = re.match(r'^@@wf-readme-end (\d+) (\S+) ?(.*)$', raw)
        if m and cur == int(m.group(1)):
            rows = list(csv.reader(io.StringIO('\n'.join(buf) + '\n'))) if buf else []
            # csv prints a row of one NULL (or '') column as an empty line
            res[cur] = (m.group(2), m.group(3), [r if r else [''] for r in rows])
            cur = None
            continue
        if cur is not None and not NOTIFY_RE.match(raw):
            buf.append(raw)
    return res


def fmt_rows(rows):
    return '\n'.join('      ' + ' | '.join(r) for r in rows) if rows else '      (no rows)'


def check(statements, res):
    failures = []
    for n, st in enumerate(statements):
        def fail(what):
            failures.append('README.md:%d: %s\n    statement: %s' % (
                st.line, what, st.first_line() + (' ...' if st.sql.strip().count('\n') else '')))
        if n not in res:
            fail('did not run (psql stopped before it)')
            continue
        state, message, rows = res[n]
        if st.error:
            want_state, want_msg = st.error
            if state == '00000':
                fail('expected ERROR %s: %s, but it succeeded' % (want_state, want_msg))
            elif state != want_state or not pattern(want_msg).fullmatch(message):
                fail('wrong error (shown at line %d)\n    expected: ERROR %s: %s\n    got:      ERROR %s: %s'
                     % (st.expect_line, want_state, want_msg, state, message))
            continue
        if state != '00000':
            fail('failed: ERROR %s: %s' % (state, message))
            continue
        header, data = (rows[0], rows[1:]) if rows else ([], [])
        if st.header is not None and [h.strip() for h in header] != st.header:
            fail('wrong columns (shown at line %d)\n    expected: %s\n    got:      %s'
                 % (st.expect_line, ' | '.join(st.header), ' | '.join(header)))
        if st.rows is None:
            continue
        ok = len(data) == len(st.rows) and all(
            len(g) == len(w) and all(pattern(wv).fullmatch(gv.strip()) for gv, wv in zip(g, w))
            for g, w in zip(data, st.rows))
        if not ok:
            fail('wrong output (shown at line %d)\n    expected:\n%s\n    got:\n%s'
                 % (st.expect_line, fmt_rows(st.rows), fmt_rows(data)))
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('readme')
    ap.add_argument('--db', help='database to run in (fresh, with the extension)')
    ap.add_argument('--list', action='store_true', help='print what would run, do not run')
    a = ap.parse_args()
    blocks, skipped, statements, problems = parse(a.readme)
    checked = sum(1 for s in statements if s.rows is not None or s.error or s.header)
    if a.list:
        for st in statements:
            print('--- README.md:%d (block %d)%s' % (st.line, st.block + 1,
                  ' expects ERROR %s: %s' % st.error if st.error else
                  ' expects %d row(s)' % len(st.rows) if st.rows is not None else ''))
            print(st.sql)
        for (ln, why) in skipped:
            print('--- README.md:%d skipped: %s' % (ln, why))
        for pr in sorted(problems):
            print('FAIL README.md:%d: %s' % pr)
        return 1 if problems else 0
    if not a.db:
        ap.error('--db or --list')
    p = run_psql(psql_script(statements), a.db)
    res = results(p.stdout)
    failures = ['README.md:%d: %s' % pr for pr in sorted(problems)] + check(statements, res)
    if not statements:
        failures.append('no ```sql statement found in %s' % a.readme)
    if len(skipped) > MAX_SKIPPED:
        failures.append('%d blocks skipped, at most %d allowed: make the others run' % (len(skipped), MAX_SKIPPED))
    if p.returncode != 0 and not failures:
        failures.append('psql exited %d: %s' % (p.returncode, p.stderr.strip()))
    for f in failures:
        print('FAIL ' + f)
    print('README examples: %d sql blocks (%d skipped), %d statements, %d with shown output; %d failure(s)'
          % (len(blocks) + len(skipped), len(skipped), len(statements), checked, len(failures)))
    for (ln, why) in skipped:
        print('  skipped block at README.md:%d: %s' % (ln, why))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
