#!/usr/bin/env python3
"""README.md against the checkout, without a server (test/stress/readme_consistency.sh).

Checks what goes stale silently when code moves on:
  1. every `(#anchor)` link names a heading (GitHub's slug), and Contents lists
     every `## ` heading;
  2. every `workflow [global options] SUBCOMMAND --flag` in a ```sh block or an
     inline code span (also `SUBCOMMAND --flag` spans, and the flags a command
     line's comment names) is an option `workflow SUBCOMMAND --help` prints;
     every other `--flag` in the README is some subcommand's, or belongs to a
     tool in OTHER_FLAGS whose file names it;
  3. every subcommand `workflow --help` lists appears in a ```sh block, and
     every option its --help prints is named in the README;
  4. on bookworm, every package `scripts/install-deps --list` prints is in the
     Dependencies table ("installs exactly these");
  5. every path of the repository the README names (`src/...`, `test/...`,
     relative links) exists.
Prints one line per problem; exit 1 when there is any.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

README = sys.argv[1] if len(sys.argv) > 1 else 'README.md'
CLI = 'build/workflow'
# Flags of other tools the README mentions: flag -> files that must contain it.
OTHER_FLAGS = {
    '--list': ['scripts/install-deps', 'test/stress/readme_examples.sh'],  # install-deps --list, readme_examples.sh --list
    '--pg': ['scripts/test'],
    '--legacy': ['test/stress/psycopg_engine.sh'],
    '--cflags': [], '--libs': [],      # pkg-config
    '--install': [], '--build': [],    # cmake
    '--schema': [],                    # pg_dump --schema=app (also import-sqlite's, checked there)
    '--help': [],
}
GLOBAL_WITH_VALUE = {'--db', '--statements', '--waits'}

problems = []


def problem(line, msg):
    problems.append('README.md:%d: %s' % (line, msg))


text = open(README, encoding='utf-8').read()
lines = text.split('\n')

# Split into prose lines and code-block lines (with the block's language).
prose, code = [], []   # (lineno, text) / (lineno, lang, text)
lang = None
for i, l in enumerate(lines, 1):
    m = re.match(r'^```(\w*)', l)
    if m:
        lang = m.group(1) if lang is None else None
        continue
    (prose.append((i, l)) if lang is None else code.append((i, lang, l)))

# 1. Anchors and Contents.
def slug(h):
    h = re.sub(r'[^\w\- ]', '', h.strip().lower())
    return h.replace(' ', '-')

anchors, seen, h2 = set(), {}, []
for i, l in prose:
    m = re.match(r'^(#{1,6})\s+(.*)$', l)
    if not m:
        continue
    s = slug(m.group(2))
    n = seen.get(s, 0)
    seen[s] = n + 1
    anchors.add(s if n == 0 else '%s-%d' % (s, n))
    if m.group(1) == '##' and m.group(2) != 'Contents':
        h2.append((i, s))
for i, l in prose:
    for a in re.findall(r'\]\(#([^)]+)\)', l):
        if a not in anchors:
            problem(i, 'link (#%s) names no heading' % a)
contents = [(i, l) for i, l in prose
            if i > next(j for j, x in prose if x == '## Contents')
            and i < next(j for j, x in prose if x.startswith('## ') and x != '## Contents'
                         and j > next(k for k, y in prose if y == '## Contents'))]
listed = set(a for _, l in contents for a in re.findall(r'\]\(#([^)]+)\)', l))
for i, s in h2:
    if s not in listed:
        problem(i, 'heading #%s is not in Contents' % s)

# 2, 3. The CLI's options, from its --help.
def help_flags(args):
    out = subprocess.run([CLI] + args + ['--help'], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit('%s %s --help: exit %d' % (CLI, ' '.join(args), out.returncode))
    flags = set()
    for l in out.stdout.split('\n'):
        # CLI11 2.3 (bookworm) prints '  -h,--help', 2.4+ (trixie, sid) '  -h,     --help'
        # and '          --db TEXT'.
        m = re.match(r'^\s+(?:(-\w),\s*)?(--[\w-]+)', l)
        if m:
            flags.add(m.group(2))
            if m.group(1):
                flags.add(m.group(1))
            if m.group(2) != '--help':
                options.append((args, m.group(2), m.group(1)))
    return out.stdout, flags

options = []   # (subcommand args, long, short or None) of every option --help prints

top, global_flags = help_flags([])
subs = re.findall(r'^  ([a-z][\w-]*)  ', re.split(r'^subcommands:', top, flags=re.M | re.I)[1], re.M)
sub_flags = {s: help_flags([s])[1] for s in subs}
all_flags = set(global_flags).union(*sub_flags.values())


def check_command(i, tokens, comment):
    """tokens after `workflow`; comment: the rest of the line after #."""
    sub = None
    skip = False
    for t in tokens:
        if skip:
            skip = False
            continue
        if t.startswith('-'):
            for f in t.split('/'):
                f = f.split('=')[0]
                if not f.startswith('-'):
                    continue
                if f in global_flags or (sub and f in sub_flags[sub]):
                    skip = sub is None and f in GLOBAL_WITH_VALUE
                    continue
                problem(i, 'workflow %s: no option %s (workflow %s--help)'
                        % (sub or '', f, sub + ' ' if sub else ''))
        elif sub is None:
            if t not in subs:
                if t != '...':
                    problem(i, 'workflow: no subcommand %r' % t)
                return
            sub = t
    for f in re.findall(r'(?<![\w-])(--[a-z][\w-]*)', comment):
        if f not in global_flags and f not in (sub_flags.get(sub) or all_flags):
            problem(i, 'workflow %s: the comment names %s, which it does not have' % (sub or '', f))


def split_shell(s):
    try:
        return shlex.split(s)
    except ValueError:
        return s.split()


mentioned = set()
for i, lg, l in code:
    if lg != 'sh':
        continue
    mentioned.update(w for w in re.findall(r'[\w-]+', l) if w in subs)
    cmd, _, comment = l.partition(' #')
    # `workflow` in command position (not inside a quoted SQL string)
    m = re.search(r'(?:^\s*|\$\(|\)\s+|&&\s*|;\s*|\|\s*)(?:[A-Z_]+=\S+\s+)*workflow\s+(.*)', cmd)
    if m:
        rest = re.split(r'\)\s*$|\)\s|;|\||&&|`', m.group(1))[0]
        check_command(i, split_shell(rest), comment)
    else:
        for f in re.findall(r'(?<![\w-])(--[a-z][\w-]*)', comment):
            if f not in all_flags:
                problem(i, 'comment names %s, an option of no subcommand' % f)

for i, l in prose:
    for span in re.findall(r'`([^`]+)`', l):
        words = span.split()
        if words and words[0] == 'workflow' and len(words) > 1:
            check_command(i, split_shell(' '.join(words[1:])), '')
        elif words and words[0] in subs and len(words) > 1 and words[1].startswith('-'):
            check_command(i, split_shell(span), '')

for i, l in [(i, l) for i, l in prose] + [(i, l) for i, _, l in code]:
    for f in re.findall(r'(?<![\w-])(--[a-z][\w-]*)', l):
        if f in all_flags:
            continue
        if f not in OTHER_FLAGS:
            problem(i, '%s is an option of no workflow subcommand (nor listed in OTHER_FLAGS)' % f)
        for path in OTHER_FLAGS.get(f, []):
            if f not in open(path, encoding='utf-8').read():
                problem(i, '%s: %s does not mention it' % (f, path))

# Every option is documented: named (long or short form) somewhere in the README.
for args, long, short in options:
    if not re.search(r'(?<![\w-])(%s)(?![\w-])' % '|'.join(re.escape(f) for f in (long, short) if f), text):
        problem(0, 'workflow %s%s (--help) is named nowhere in the README'
                % (' '.join(args) + ' ' if args else '', long))

for s in subs:
    if s not in mentioned:
        problem(0, 'subcommand %s (workflow --help) appears in no ```sh block' % s)

# 4. Dependencies table vs scripts/install-deps --list. The table names bookworm's
# packages (the chroots' majors in parentheses), so it is compared there only.
bookworm = open('/etc/debian_version').read().startswith('12')
deps = subprocess.run(['scripts/install-deps', '--list'], capture_output=True, text=True,
                      check=True).stdout.split() if bookworm else []
start = next(i for i, l in prose if l == '## Dependencies')
end = next(i for i, l in prose if l.startswith('## ') and i > start)
cells = set()
for i, l in prose:
    if start < i < end and l.startswith('| '):
        cells.update(re.split(r'[\s,;()`]+', l.split('|')[1]))
for p in deps:
    if p not in cells:
        problem(start, 'Dependencies: scripts/install-deps --list installs %s, the table does not name it' % p)

# 5. Paths of the repository the README names.
roots = ('src/', 'test/', 'bench/', 'scripts/', 'sql/', 'expected/', 'examples/', 'docs/',
         'cmake/', '.ci/')
for i, l in prose + [(i, l) for i, _, l in code]:
    names = re.findall(r'`([\w./*-]+)`', l) + re.findall(r'\]\(((?!#|https?:)[^)\s]+)\)', l)
    for p in names:
        if not p.startswith(roots) or p.endswith('node_modules'):
            continue
        pattern = re.sub(r'(\d)x_', r'\1?_', p.replace('NN_', '[0-9][0-9]_'))  # NN_*.sql, 4x_*.sql
        if not (os.path.exists(p) or glob.glob(pattern)):
            problem(i, 'names %s, which is not in the checkout' % p)

for p in problems:
    print(p)
print('readme_consistency: %d problem(s); %d anchors, %d subcommands, %d packages checked'
      % (len(problems), len(anchors), len(subs), len(deps)))
sys.exit(1 if problems else 0)
