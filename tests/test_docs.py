"""The documentation: every relative link and #anchor resolves, every results table equals
its source.

Files: README.md, docs/*.md and fpga/README.md.

Links. Every Markdown link and image (``[text](target)``, ``![alt](target)``, reference
definitions ``[name]: target``) and every HTML ``href``/``src`` outside code blocks and inline
code is checked, unless it is an absolute URL (``scheme:``). A relative target must exist and
stay inside the repository; a ``#anchor`` must be a heading of the target Markdown file (or of
the file itself for ``#anchor`` alone) under GitHub's rules: the heading's rendered text,
lowercased, every character that is not a letter, digit, underscore, hyphen or space dropped,
each space turned into a hyphen; a repeated heading gets ``-1``, ``-2``, ... Explicit HTML
anchors (``<a name="x">``, ``id="x"``) count too.

Results tables. A table whose numbers come from a file carries, on the line above it (blank
lines allowed in between), a comment naming that file relative to the repository root::

    <!-- csv: output/fashion_mnist/resmlp_layers_4_h_4_embed_96/results.csv -->
    <!-- csv: output/.../results_seeds.csv as differences -->

The test rebuilds the expected table from the file and compares it with the document cell by
cell (header included; ``**bold**`` and surrounding spaces are ignored), naming the file, the
line and the cell of every difference. The kind of table follows from the file, or is named
after ``as``:

==============  ====================================  ==========================================
kind            source                                table
==============  ====================================  ==========================================
``paper``       ``scripts/experiments.toml``          the paper's CIFAR-10 accuracies, activation
                                                      x h (one decimal)
``accuracy``    ``results.csv``                       activation x h, as in the CSV; the teacher
                                                      as a row ``| Teacher (...) | 85.54 | | |``
                                                      or on the next line, ``Teacher (...): 85.54 %``
                                                      (``paper``: the same, with the paper's)
``seeds``       ``results_seeds.csv``                 activation x h: ``mean +- std (runs)``, the
                                                      runs in seed order, std the sample std
``differences`` ``results_seeds.csv``                 rows ``| A h = x | B h = y | d | se | sd |
                                                      yes/no | yes/no |``, any pairs, any order:
                                                      d = mean A - mean B, se = sqrt(sA^2/nA +
                                                      sB^2/nB), sd = sqrt(sA^2 + sB^2), yes when
                                                      abs(d) > 2 se (2 sd)
``compare``     two ``results_seeds.csv``             per activation and h: ``mean +- std`` of each
                (the recipe, then the ablation)       file, then d, se, sd and the two yes/no
                                                      columns as above; the two column titles are
                                                      the ablation's ``versus`` and ``label`` of
                                                      ``scripts/experiments.toml``
``single``      two ``results.csv`` and a             per activation and h: the accuracy in each
                ``results_seeds.csv`` (the recipe,    ``results.csv``, d, the seed study's sample
                the ablation, the recipe's seeds)     std at that h (else the activation's pooled
                                                      std, sqrt of the mean variance, marked
                                                      ``(pooled)``) and yes when abs(d) > 2 sd
``int8``        ``results_int8.csv``                  rows in CSV order: ``<label>, h = x``, the
                                                      float and the INT8 accuracy
==============  ====================================  ==========================================

Labels, the order of activations and hidden factors, the teacher and the paper's numbers come
from ``scripts/experiments.toml`` (read here with ``tomllib``); means and deviations are
computed here with ``statistics``, independently of ``scripts/collect_results.py`` (whose
Markdown output is checked to pass, so a table it prints can be pasted as it is). Tables in
README.md and the docs/ files this project writes for users that look like results (a column
``h = x``, ``d`` or ``INT8 ...``) must carry a comment.

Fast (well under a second) and needs no torch.
"""
from __future__ import annotations

import csv
import difflib
import glob
import math
import os
import re
import statistics
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "scripts", "experiments.toml")

DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))),
        "fpga/README.md"]
# Documents whose results-like tables need not name a source: their owners state measured
# figures (fpga/README.md) or the paper's table as part of the method (docs/METHOD.md).
NO_SOURCE_REQUIRED = {"docs/METHOD.md", "fpga/README.md"}


# --- reading Markdown ----------------------------------------------------------------------------

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
COMMENT = re.compile(r"<!--.*?-->", re.S)


def prose_lines(text, comments=False):
    """(line number, line) of every line outside fenced code blocks, HTML comments blanked
    unless ``comments``."""
    if not comments:
        text = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    fence = None
    for i, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
            continue
        yield i, line


def github_slug(heading):
    """The anchor GitHub gives a heading (its Markdown source, without the leading #s)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)     # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                            # HTML tags
    text = text.replace("`", "")
    text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", text)            # _emphasis_
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*\bname=["']([^"']+)["']|\bid=["']([^"']+)["']""")


def anchors(path):
    """Every anchor a Markdown file defines."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    seen, out = {}, set()
    for _, line in prose_lines(text):
        m = HEADING.match(line)
        if m:
            slug = github_slug(m.group(2))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
        for m in HTML_ANCHOR.finditer(line):
            out.add(m.group(1) or m.group(2))
    return out


LINK = re.compile(r"\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_LINK = re.compile(r"""\b(?:href|src)=["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def links(path):
    """(line number, target) of every link of a Markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for i, line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        for rx in (LINK, REF_DEF, HTML_LINK):
            for m in rx.finditer(line):
                yield i, m.group(1).strip("<>")


def _exists_with_case(path, root):
    """os.path.exists, but every component spelled with its case (GitHub is case-sensitive)."""
    if not os.path.exists(path):
        return False
    parts = os.path.relpath(path, root).split(os.sep)
    here = root
    for part in parts:
        if part not in (".", "") and part not in os.listdir(here):
            return False
        here = os.path.join(here, part)
    return True


def link_errors(doc, root=ROOT):
    """One message per link of ``doc`` (relative to ``root``) that does not resolve."""
    path = os.path.join(root, doc)
    errors = []
    cache = {}
    for line, target in links(path):
        if SCHEME.match(target):
            continue
        where = f"{doc}:{line}: link '{target}'"
        file_part, _, anchor = target.partition("#")
        if file_part:
            base = root if file_part.startswith("/") else os.path.dirname(path)
            dest = os.path.normpath(os.path.join(base, file_part.lstrip("/")))
            if os.path.relpath(dest, root).startswith(".."):
                errors.append(f"{where} points outside the repository")
                continue
            if not _exists_with_case(dest, root):
                errors.append(f"{where}: no file {os.path.relpath(dest, root)}")
                continue
        else:
            dest = path
        if anchor:
            if not dest.endswith(".md"):
                errors.append(f"{where}: an anchor into a file that is not Markdown")
                continue
            if dest not in cache:
                cache[dest] = anchors(dest)
            if anchor not in cache[dest]:
                near = difflib.get_close_matches(anchor, sorted(cache[dest]), n=3, cutoff=0.6)
                errors.append(f"{where}: no heading #{anchor} in {os.path.relpath(dest, root)}"
                              + (f" (similar: {', '.join('#' + a for a in near[:3])})" if near else ""))
    return errors


# --- tables ----------------------------------------------------------------------------------------

def split_row(line):
    """The cells of a Markdown table row: escaped pipes kept, ** and outer spaces dropped."""
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [" ".join(c.replace("\\|", "|").replace("**", "").split()) for c in re.split(r"(?<!\\)\|", s)]


SOURCE = re.compile(r"<!--\s*csv:\s*(.*?)\s*-->")
RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _text(doc, root, text):
    if text is None:
        with open(os.path.join(root, doc), encoding="utf-8") as f:
            text = f.read()
    return text


def tables(doc, root=ROOT, text=None):
    """Every table of ``doc`` (or of ``text``, named ``doc``): dict(line, header, rows [(line,
    cells)], source comment or None, source line, next prose line after the table)."""
    lines = _text(doc, root, text).split("\n")
    inside = {i for i, _ in prose_lines("\n".join(lines))}
    out, i = [], 0
    while i < len(lines):
        n = i + 1
        if n in inside and lines[i].lstrip().startswith("|") and i + 1 < len(lines) \
                and RULE.match(lines[i + 1]):
            source, source_line = None, None
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0:
                m = SOURCE.search(lines[j])
                if m:
                    source, source_line = m.group(1), j + 1
            rows, k = [], i + 2
            while k < len(lines) and lines[k].lstrip().startswith("|"):
                rows.append((k + 1, split_row(lines[k])))
                k += 1
            after = k
            while after < len(lines) and not lines[after].strip():
                after += 1
            out.append(dict(line=n, header=split_row(lines[i]), rows=rows, source=source,
                            source_line=source_line, after=lines[after] if after < len(lines) else "",
                            after_line=after + 1))
            i = k
        else:
            i += 1
    return out


def dangling_sources(doc, root=ROOT, text=None):
    """Source comments that are not directly above a table."""
    text = _text(doc, root, text)
    used = {t["source_line"] for t in tables(doc, root, text) if t["source"]}
    return [f"{doc}:{i}: a csv comment with no table right below it"
            for i, line in prose_lines(text, comments=True) if SOURCE.search(line) and i not in used]


class Manifest:
    """What the tables need from scripts/experiments.toml."""

    def __init__(self, path=MANIFEST):
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        self.acts = [a["act"] for a in raw["activation"]]
        self.label = {a["act"]: a["label"] for a in raw["activation"]}
        self.act_of = {a["label"]: a["act"] for a in raw["activation"]}
        self.paper = {a["act"]: a["paper"] for a in raw["activation"]}
        self.hs = [float(x["h"]) for x in raw["hidden"]]
        self.teacher = raw["teacher"]
        self.ablations = raw.get("ablation", {})


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def h_head(h):
    return f"h = {float(h)}"


def stats(rows):
    """{(act, h): (mean, sample std, n, runs as written, in seed order)}."""
    groups = {}
    for r in rows:
        groups.setdefault((r["activation"], float(r["hidden_factor"])), []).append(
            (int(r["seed"]), r["accuracy"]))
    out = {}
    for key, runs in groups.items():
        runs.sort()
        xs = [float(v) for _, v in runs]
        out[key] = (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else float("nan"),
                    len(xs), [v for _, v in runs])
    return out


def diff_cells(a, b):
    """d, se, sd and the two verdicts of the difference of two (mean, std, n, _) groups."""
    (m1, s1, n1, _), (m2, s2, n2, _) = a, b
    d = m1 - m2
    se = math.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
    sd = math.sqrt(s1 ** 2 + s2 ** 2)
    return [f"{d:+.2f}", f"{se:.2f}", f"{sd:.2f}", "yes" if abs(d) > 2 * se else "no",
            "yes" if abs(d) > 2 * sd else "no"]


DIFF_HEAD = ["d", "se", "sd", "|d| > 2 se", "|d| > 2 sd"]


class SourceError(Exception):
    pass


def expected_table(kind, sources, table, man):
    """(header, rows) the table must have; rows may depend on the document's own row labels
    (``differences``). ``table`` is the document's table as read by :func:`tables`."""
    teacher_label = man.teacher["label"]
    if kind in ("paper", "accuracy"):
        if kind == "paper":
            acc = {(a, h): f"{v:.1f}" for a in man.acts for h, v in zip(man.hs, man.paper[a])}
            teacher = f"{man.teacher['paper']:.1f}"
        else:
            rows = read_csv(sources[0])
            acc = {(r["activation"], float(r["hidden_factor"])): r["accuracy"] for r in rows}
            teacher = next((r["accuracy"] for r in rows if r["activation"] == "teacher"), "(no teacher row)")
        body = [[man.label[a], *(acc.get((a, h), "(not in the source)") for h in man.hs)] for a in man.acts]
        if any(cells[0] == teacher_label for _, cells in table["rows"]):
            body.append([teacher_label, teacher, *[""] * (len(man.hs) - 1)])
        else:
            sentence = f"{teacher_label}: {teacher} %"
            if sentence not in table["after"].replace("**", ""):
                raise SourceError(f"line {table['after_line']}: the line after the table must state "
                                  f"'{sentence}' (or the table must have a '{teacher_label}' row)")
        return ["activation", *map(h_head, man.hs)], body
    if kind == "seeds":
        st = stats(read_csv(sources[0]))
        hs = sorted({h for _, h in st}, reverse=True)
        body = []
        for a in man.acts:
            row = [man.label[a]]
            for h in hs:
                if (a, h) not in st:
                    row.append("(not in the source)")
                    continue
                m, s, _, runs = st[(a, h)]
                row.append(f"{m:.2f} +- {s:.2f} ({', '.join(runs)})")
            body.append(row)
        return ["activation", *map(h_head, hs)], body
    if kind == "differences":
        st = stats(read_csv(sources[0]))
        body = []
        for _, cells in table["rows"]:
            groups = []
            for cell in cells[:2]:
                m = re.fullmatch(r"(.+) h = ([0-9.]+)", cell)
                key = (man.act_of.get(m.group(1)), float(m.group(2))) if m else None
                groups.append(st.get(key))
            if None in groups:
                body.append([*cells[:2], "(first and second must read '<label> h = <h>' of the source)"])
            else:
                body.append([*cells[:2], *diff_cells(*groups)])
        return ["first", "second", *DIFF_HEAD], body
    if kind == "compare":
        if len(sources) != 2:
            raise SourceError("a compare table names two files: the recipe's, then the ablation's")
        folders = {a["folder"]: a for a in man.ablations.values()}
        abl = next((folders[p] for p in sources[1].replace("\\", "/").split("/") if p in folders), None)
        if abl is None:
            raise SourceError(f"{sources[1]} is in no [ablation] folder of scripts/experiments.toml")
        sa, sb = stats(read_csv(sources[0])), stats(read_csv(sources[1]))
        hs = sorted({h for _, h in sa}, reverse=True)
        body = []
        for a in man.acts:
            for h in hs:
                if (a, h) not in sa or (a, h) not in sb:
                    body.append([man.label[a], f"{h}", "(not in both sources)"])
                    continue
                body.append([man.label[a], f"{h}", *(f"{g[0]:.2f} +- {g[1]:.2f}" for g in (sa[(a, h)], sb[(a, h)])),
                             *diff_cells(sa[(a, h)], sb[(a, h)])])
        return ["activation", "h", abl["versus"], abl["label"], *DIFF_HEAD], body
    if kind == "single":
        if len(sources) != 3:
            raise SourceError("a single table names three files: the recipe's results.csv, the "
                              "ablation's, then the recipe's results_seeds.csv")
        folders = {a["folder"]: a for a in man.ablations.values()}
        abl = next((folders[p] for p in sources[1].replace("\\", "/").split("/") if p in folders), None)
        if abl is None:
            raise SourceError(f"{sources[1]} is in no [ablation] folder of scripts/experiments.toml")
        acc_a, acc_b = ({(r["activation"], float(r["hidden_factor"])): r["accuracy"] for r in read_csv(src)}
                        for src in sources[:2])
        st = stats(read_csv(sources[2]))
        body = []
        for a in man.acts:
            var = [g[1] ** 2 for (act, _), g in st.items() if act == a and g[2] > 1]
            for h in man.hs:
                if (a, h) not in acc_a or (a, h) not in acc_b:
                    body.append([man.label[a], f"{h}", "(not in both sources)"])
                    continue
                d = float(acc_a[(a, h)]) - float(acc_b[(a, h)])
                if (a, h) in st:
                    sd, cell = st[(a, h)][1], f"{st[(a, h)][1]:.2f}"
                else:
                    sd = math.sqrt(statistics.mean(var)) if var else float("nan")
                    cell = f"{sd:.2f} (pooled)"
                body.append([man.label[a], f"{h}", acc_a[(a, h)], acc_b[(a, h)], f"{d:+.2f}", cell,
                             "yes" if abs(d) > 2 * sd else "no"])
        return ["activation", "h", abl["versus"], abl["label"], "d", "seed sd", "|d| > 2 sd"], body
    if kind == "int8":
        body = [[f"{man.label[r['activation']]}, {h_head(r['hidden_factor'])}", r["float_accuracy"],
                 r["int8_accuracy"]] for r in read_csv(sources[0])]
        return ["model", "float", "INT8 (integer model)"], body
    raise SourceError(f"unknown table kind '{kind}' (paper, accuracy, seeds, differences, compare, "
                      "single, int8)")


def kind_of(sources):
    if sources[0].endswith(".toml"):
        return "paper"
    with open(sources[0], newline="") as f:
        fields = next(csv.reader(f), [])
    if "int8_accuracy" in fields:
        return "int8"
    if "seed" in fields:
        return "compare" if len(sources) == 2 else "seeds"
    return "single" if len(sources) == 3 else "accuracy"


def table_errors(doc, root=ROOT, man=None, text=None):
    """One message per cell of a results table of ``doc`` (or of ``text``, named ``doc``) that
    differs from its source; sources are relative to ``root``."""
    man = man or Manifest(os.path.join(root, "scripts", "experiments.toml"))
    text = _text(doc, root, text)
    errors = dangling_sources(doc, root, text)
    for t in tables(doc, root, text):
        if t["source"] is None:
            continue
        where = f"{doc}:{t['line']}"
        words = t["source"].split()
        kind = None
        if "as" in words:
            kind = " ".join(words[words.index("as") + 1:])
            words = words[:words.index("as")]
        sources = [os.path.join(root, w) for w in words]
        missing = [w for w, p in zip(words, sources) if not os.path.isfile(p)]
        if not words or missing:
            errors.append(f"{where}: the table's source {', '.join(missing) or '(none named)'} does not exist")
            continue
        try:
            head, body = expected_table(kind or kind_of(sources), sources, t, man)
        except SourceError as exc:
            errors.append(f"{where}: {exc}")
            continue
        src = " and ".join(words)
        got_rows = [(t["line"], t["header"])] + t["rows"]
        want_rows = [head] + body
        header = t["header"]
        for r, ((line, got), want) in enumerate(zip(got_rows, want_rows)):
            if len(got) != len(want):
                errors.append(f"{doc}:{line}: {len(got)} cells, {src} gives {len(want)}: {want}")
                continue
            for c, (g, w) in enumerate(zip(got, want)):
                if g != w:
                    what = "header" if r == 0 else f"row '{got[0]}'"
                    col = header[c] if c < len(header) else str(c + 1)
                    errors.append(f"{doc}:{line}: {what}, column '{col}': the document has '{g}', "
                                  f"{src} gives '{w}'")
        if len(got_rows) != len(want_rows):
            errors.append(f"{where}: {len(got_rows) - 1} rows, {src} gives {len(want_rows) - 1}")
    return errors


RESULTS_LIKE = re.compile(r"^(h = [0-9.]+|d|INT8.*)$")


# --- the tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", DOCS)
def test_links_and_anchors_resolve(doc):
    assert os.path.isfile(os.path.join(ROOT, doc)), doc
    errors = link_errors(doc)
    assert not errors, "\n" + "\n".join(errors)


@pytest.mark.parametrize("doc", DOCS)
def test_results_tables_equal_their_sources(doc):
    errors = table_errors(doc)
    assert not errors, "\n" + "\n".join(errors)


@pytest.mark.parametrize("doc", [d for d in DOCS if d not in NO_SOURCE_REQUIRED])
def test_results_tables_name_their_source(doc):
    bare = [f"{doc}:{t['line']}: a results table with no '<!-- csv: ... -->' above it: {t['header']}"
            for t in tables(doc) if t["source"] is None and any(RESULTS_LIKE.match(c) for c in t["header"])]
    assert not bare, "\n" + "\n".join(bare)


def test_readme_names_the_test_command():
    """CI's .ci/run calls ./scripts/test.sh; the README tells users the same command."""
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert "./scripts/test.sh" in f.read()
    with open(os.path.join(ROOT, "README.md")) as f:
        assert "./scripts/test.sh" in f.read()


def test_github_slug_rules():
    assert github_slug("6. Training recipe") == "6-training-recipe"
    assert github_slug("6.1 ResNet-20 teacher") == "61-resnet-20-teacher"
    assert github_slug("10. INT8 ResMLP") == "10-int8-resmlp"
    assert github_slug("The paper's table in cycles") == "the-papers-table-in-cycles"
    assert github_slug("Several processes: `torchrun`") == "several-processes-torchrun"
    assert github_slug("The 8-bit LERP arithmetic ([METHOD.md section 9](../docs/METHOD.md#9-8-bit-lerp))") \
        == "the-8-bit-lerp-arithmetic-methodmd-section-9"
    assert github_slug("a + b") == "a--b"
    assert github_slug("save_memory and _emphasis_") == "save_memory-and-emphasis"


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_checker_finds_broken_links_and_anchors(tmp_path):
    root = str(tmp_path)
    _write(os.path.join(root, "docs", "A.md"),
           "# A\n\n## Resume\n\n## Resume\n\n```\n# not a heading\n```\n<a name=\"here\"></a>\n")
    good = ("[a](docs/A.md) [b](docs/A.md#resume) [c](docs/A.md#resume-1) [d](docs/A.md#here)\n"
            "[e](#top) `[f](nowhere.md)` [g](https://example.org/x.md#y)\n\n# Top\n"
            "```\n[h](nowhere.md)\n```\n")
    _write(os.path.join(root, "README.md"), good)
    assert link_errors("README.md", root) == []
    for bad, want in [("[x](docs/B.md)", "README.md:1: link 'docs/B.md': no file docs/B.md"),
                      ("[x](docs/a.md)", "no file docs/a.md"),                      # case
                      ("[x](docs/A.md#resume-2)", "no heading #resume-2 in docs/A.md (similar: #resume-1"),
                      ("[x](docs/A.md#not-a-heading)", "no heading #not-a-heading"),
                      ("[x](#nope)", "no heading #nope in README.md"),
                      ("[x](../outside.md)", "points outside the repository")]:
        _write(os.path.join(root, "README.md"), bad + "\n" + good)
        errors = link_errors("README.md", root)
        assert len(errors) == 1 and want in errors[0], errors


def _tiny_tree(root, doc_text):
    man = ('[[activation]]\nact = "base"\nfolder = "baseline"\nlabel = "ReLU"\npaper = [80.0, 70.5]\n'
           '[[activation]]\nact = "psa"\nfolder = "lerp_psa_64"\nlabel = "LERP-PSA"\npaper = [81.0, 75.25]\n'
           '[[hidden]]\nh = 1.0\nstem = "h_mul_1"\n[[hidden]]\nh = 0.5\nstem = "h_div_2"\n'
           '[teacher]\nlabel = "Teacher"\npaper = 88.9\n'
           '[ablation.iso]\nfolder = "abl"\nlabel = "isolated"\nversus = "authors"\n'
           '[ablation.fast]\nfolder = "fast"\nlabel = "bf16"\nversus = "fp32"\n')
    _write(os.path.join(root, "scripts", "experiments.toml"), man)
    _write(os.path.join(root, "r", "results.csv"),
           "activation,hidden_factor,accuracy\nteacher,4,85.54\nbase,1,85.05\nbase,0.5,84.60\n"
           "psa,1,85.50\npsa,0.5,85.04\n")
    seeds = "activation,hidden_factor,seed,accuracy\n" + "".join(
        f"{a},{h},{s},{v}\n" for a, h, runs in [("base", 0.5, ("84.60", "84.61", "84.65")),
                                                ("psa", 0.5, ("85.04", "85.13", "85.11"))]
        for s, v in zip((2025, 2023, 2024), runs))
    _write(os.path.join(root, "r", "results_seeds.csv"), seeds)
    _write(os.path.join(root, "r", "abl", "results_seeds.csv"), seeds.replace("85.13", "84.13"))
    _write(os.path.join(root, "r", "fast", "results.csv"),
           "activation,hidden_factor,accuracy\nbase,1,85.15\nbase,0.5,84.50\npsa,1,85.60\npsa,0.5,85.04\n")
    _write(os.path.join(root, "r", "results_int8.csv"),
           "activation,hidden_factor,float_parent,float_accuracy,int8_accuracy\npsa,1,x.bin,85.50,85.89\n")
    _write(os.path.join(root, "README.md"), doc_text)


TINY_DOC = """# Results

<!-- csv: scripts/experiments.toml -->
| activation | h = 1.0 | h = 0.5 |
|---|---|---|
| ReLU | 80.0 | 70.5 |
| LERP-PSA | 81.0 | 75.2 |

Teacher: 88.9 %.

<!-- csv: r/results.csv -->

| activation | h = 1.0 | h = 0.5 |
|---|---|---|
| ReLU | 85.05 | 84.60 |
| LERP-PSA | **85.50** | 85.04 |
| Teacher | 85.54 | |

<!-- csv: r/results_seeds.csv -->
| activation | h = 0.5 |
|---|---|
| ReLU | 84.62 +- 0.03 (84.61, 84.65, 84.60) |
| LERP-PSA | 85.09 +- 0.05 (85.13, 85.11, 85.04) |

<!-- csv: r/results_seeds.csv as differences -->
| first | second | d | se | sd | \\|d\\| > 2 se | \\|d\\| > 2 sd |
|---|---|---|---|---|---|---|
| LERP-PSA h = 0.5 | ReLU h = 0.5 | +0.47 | 0.03 | 0.05 | yes | yes |

<!-- csv: r/results_seeds.csv r/abl/results_seeds.csv -->
| activation | h | authors | isolated | d | se | sd | \\|d\\| > 2 se | \\|d\\| > 2 sd |
|---|---|---|---|---|---|---|---|---|
| ReLU | 0.5 | 84.62 +- 0.03 | 84.62 +- 0.03 | +0.00 | 0.02 | 0.04 | no | no |
| LERP-PSA | 0.5 | 85.09 +- 0.05 | 84.76 +- 0.55 | +0.33 | 0.32 | 0.55 | no | no |

<!-- csv: r/results.csv r/fast/results.csv r/results_seeds.csv -->
| activation | h | fp32 | bf16 | d | seed sd | \\|d\\| > 2 sd |
|---|---|---|---|---|---|---|
| ReLU | 1.0 | 85.05 | 85.15 | -0.10 | 0.03 (pooled) | yes |
| ReLU | 0.5 | 84.60 | 84.50 | +0.10 | 0.03 | yes |
| LERP-PSA | 1.0 | 85.50 | 85.60 | -0.10 | 0.05 (pooled) | yes |
| LERP-PSA | 0.5 | 85.04 | 85.04 | +0.00 | 0.05 | no |

<!-- csv: r/results_int8.csv -->
| model | float | INT8 (integer model) |
|---|---|---|
| LERP-PSA, h = 1.0 | 85.50 | 85.89 |
"""


def test_checker_rebuilds_every_kind_of_table(tmp_path):
    root = str(tmp_path)
    _tiny_tree(root, TINY_DOC)
    assert table_errors("README.md", root) == []
    assert {t["source"] for t in tables("README.md", root)} >= {"r/results.csv", "r/results_int8.csv"}


@pytest.mark.parametrize("old, new, want", [
    ("| LERP-PSA | 81.0 | 75.2 |", "| LERP-PSA | 81.0 | 75.2 |\n| B | 1 | 2 |",
     "README.md:4: 3 rows, scripts/experiments.toml gives 2"),                        # extra row
    ("| LERP-PSA | 81.0 | 75.2 |", "| LERP-PSA | 81.0 | 75.25 |", "the document has '75.25'"),
    ("| ReLU | 85.05 |", "| ReLU | 85.06 |",
     "README.md:15: row 'ReLU', column 'h = 1.0': the document has '85.06', r/results.csv gives '85.05'"),
    ("Teacher: 88.9 %.", "Teacher: 88.8 %.", "the line after the table must state 'Teacher: 88.9 %'"),
    ("| Teacher | 85.54 | |", "| Teacher | 85.45 | |", "row 'Teacher', column 'h = 1.0'"),
    ("(84.61, 84.65, 84.60)", "(84.60, 84.61, 84.65)", "row 'ReLU', column 'h = 0.5'"),      # seed order
    ("| +0.47 | 0.03 | 0.05 | yes | yes |", "| +0.47 | 0.03 | 0.05 | yes | no |", "column '|d| > 2 sd'"),
    ("| 0.32 | 0.55 | no | no |", "| 0.32 | 0.56 | no | no |", "column 'sd': the document has '0.56'"),
    ("| LERP-PSA | 0.5 | 85.04 | 85.04 | +0.00 | 0.05 | no |", "| LERP-PSA | 0.5 | 85.04 | 85.04 | +0.00 | 0.04 | no |",
     "column 'seed sd': the document has '0.04'"),
    ("| 0.03 (pooled) | yes |", "| 0.03 | yes |", "column 'seed sd': the document has '0.03', r/results.csv and "
     "r/fast/results.csv and r/results_seeds.csv gives '0.03 (pooled)'"),
    ("| LERP-PSA, h = 1.0 | 85.50 | 85.89 |", "| LERP-PSA, h = 1.0 | 85.50 | 85.98 |",
     "column 'INT8 (integer model)': the document has '85.98', r/results_int8.csv gives '85.89'"),
    ("<!-- csv: r/results_int8.csv -->", "<!-- csv: r/results_int9.csv -->",
     "the table's source r/results_int9.csv does not exist"),
    ("<!-- csv: r/results.csv -->\n", "<!-- csv: r/results.csv -->\nSome words.\n",
     "a csv comment with no table right below it"),
])
def test_checker_finds_an_edited_table(tmp_path, old, new, want):
    root = str(tmp_path)
    doc = TINY_DOC
    assert old in doc
    _tiny_tree(root, doc.replace(old, new, 1))
    errors = table_errors("README.md", root)
    assert any(want in e for e in errors), errors


def test_tables_printed_by_collect_results_pass():
    """A table that scripts/collect_results.py prints can be pasted under its csv comment."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import collect_results as cr
    import experiments
    m = experiments.load()
    root = m.model_root("fashion-mnist", ROOT)
    seeds_csvs = sorted(glob.glob(os.path.join(root, "**", m.seeds["results"]), recursive=True))
    results_csvs = sorted(glob.glob(os.path.join(root, "**", m.results_file), recursive=True))
    if not seeds_csvs or not results_csvs:
        pytest.skip("no shipped results.csv / results_seeds.csv")
    rel = lambda p: os.path.relpath(p, ROOT)
    man = Manifest()
    docs = []
    # collect_results.table(): our table, then the paper's, each with the teacher as a row
    ours, _, paper = cr.table(cr.read_csv(results_csvs[0]), "fashion-mnist").partition("CIFAR-10 (paper):")
    docs.append(f"<!-- csv: {rel(results_csvs[0])} -->\n" + "\n".join(
        x for x in ours.splitlines() if x.startswith("|")))
    docs.append("<!-- csv: scripts/experiments.toml -->\n" + "\n".join(
        x for x in paper.splitlines() if x.startswith("|")))
    seed_md = cr.seed_table(cr.read_seeds_csv(seeds_csvs[0]))
    first, second = [[x for x in part.splitlines() if x.startswith("|")]
                     for part in seed_md.split("Differences of means")]
    docs.append(f"<!-- csv: {rel(seeds_csvs[0])} -->\n" + "\n".join(first))
    docs.append(f"<!-- csv: {rel(seeds_csvs[0])} as differences -->\n" + "\n".join(second))
    for name, abl in m.ablations.items():
        a, b = os.path.join(root, m.seeds["results"]), os.path.join(root, abl.folder, m.seeds["results"])
        if os.path.isfile(a) and os.path.isfile(b):
            md = cr.compare_table(cr.read_seeds_csv(a), cr.read_seeds_csv(b), abl.versus, abl.label)
            docs.append(f"<!-- csv: {rel(a)} {rel(b)} -->\n" + "\n".join(
                x for x in md.splitlines() if x.startswith("|")))
        a, b = os.path.join(root, m.results_file), os.path.join(root, abl.folder, m.results_file)
        s = os.path.join(root, m.seeds["results"])
        if (os.path.isfile(b) and os.path.isfile(s)
                and not os.path.isfile(os.path.join(root, abl.folder, m.seeds["results"]))):
            md = cr.single_compare_table(cr.read_csv(a), cr.read_csv(b), cr.read_seeds_csv(s),
                                         abl.versus, abl.label)
            docs.append(f"<!-- csv: {rel(a)} {rel(b)} {rel(s)} -->\n" + "\n".join(
                x for x in md.splitlines() if x.startswith("|")))
    text = "\n\n".join(docs) + "\n"
    assert len([t for t in tables("collect_results", ROOT, text) if t["source"]]) == len(docs)
    errors = table_errors("collect_results", ROOT, man, text)
    assert not errors, "\n" + "\n".join(errors)
