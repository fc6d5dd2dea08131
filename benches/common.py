"""What the side-by-side benchmarks share: the engines' binaries and versions, timed runs with
peak memory, the spread of repeated runs, and results compared value by value.

* DuckDB is timed as its real binary (the executable inside the `duckdb-cli` package, or
  `$DUCKDB`), never through the `duckdb` launcher on PATH (a shell shim, then Python, then the
  binary), so a cold DuckDB time is DuckDB's own start-up and work.
* Every answer is compared: each engine's full result, as CSV, parsed, normalized (time
  stamps, numbers, NULLs, CSV formula guards) and sorted, must be equal, or the run stops.
"""
import csv
import io
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# $TRAIL_BIN: another build (one saved aside while target/ is rebuilt, or an older one).
TRAIL = os.environ.get("TRAIL_BIN") or os.path.join(ROOT, "target", "release", "trail")


def trail_binary():
    if not os.path.exists(TRAIL):
        sys.exit("build first: cargo build --release -p trail-cli")
    return TRAIL


def duckdb_binary():
    """The DuckDB executable itself: $DUCKDB, or the one inside the duckdb-cli package."""
    path = os.environ.get("DUCKDB")
    if not path:
        try:
            import duckdb_cli  # the package holds the real binary beside its __init__
        except ImportError:
            sys.exit("the DuckDB CLI is missing: pip install duckdb-cli (or set DUCKDB=/path/to/duckdb)")
        path = os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb")
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            sys.exit(f"{path} is not an executable binary (a launcher script?); set DUCKDB to the binary")
    return path


def versions(duck):
    trail = subprocess.run([trail_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    duckv = subprocess.run([duck, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{trail} (commit {commit}{', modified' if dirty else ''})", f"DuckDB {duckv} ({duck})"


class Failed(Exception):
    """A command that exited non-zero, with its output."""

    def __init__(self, output):
        super().__init__(output[-2000:])
        self.output = output


def run_measured(cmd, timeout=None, stdin=None, check=True):
    """Run a command; returns (seconds, peak RSS in bytes, stdout text). Output goes to
    temporary files (no pipe to fill), and the child is reaped with wait4 for its peak RSS.
    With `timeout`, a run still going is killed and seconds is None. A failed command stops
    the benchmark, or with check=False raises Failed."""
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=inp, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if timeout else 0)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return None, usage.ru_maxrss * 1024, ""
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode != 0 and not check:
            raise Failed(text + err.read().decode(errors="replace"))
        if proc.returncode != 0:
            sys.exit(f"{os.path.basename(cmd[0])} failed ({proc.returncode}): {' '.join(cmd[1:5])} ...\n"
                     f"{text[-2000:]}\n{err.read().decode(errors='replace')[-2000:]}")
        return elapsed, usage.ru_maxrss * 1024, text


def generate_once(data, gen_args):
    """Run `trail gen --json --out DATA GEN_ARGS...` unless DATA already holds its complete
    output (a marker written last); returns (data, the generator's summary)."""
    import json
    import shutil
    marker = os.path.join(data, ".complete.json")
    if os.path.exists(marker):
        with open(marker) as f:
            return data, json.load(f)
    shutil.rmtree(data, ignore_errors=True)
    _, _, out = run_measured([trail_binary(), "gen", "--json", "--out", data] + gen_args)
    stats = json.loads(out)
    stats["compressed_bytes"] = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    with open(marker, "w") as f:
        json.dump(stats, f)
    return data, stats


def spread(xs):
    """(min, median, max)."""
    return min(xs), statistics.median(xs), max(xs)


def ms(xs):
    lo, med, hi = spread(xs)
    return f"{med * 1000:.0f} ms ({lo * 1000:.0f}-{hi * 1000:.0f})"


def secs(xs):
    lo, med, hi = spread(xs)
    return f"{med:.2f} s ({lo:.2f}-{hi:.2f})"


def ratio_text(ratios):
    lo, med, hi = spread(ratios)
    return f"{med:.2f}x ({lo:.2f}-{hi:.2f})"


_TS = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00(:?00)?)?$")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d*(e-?\d+)?$")


def norm_cell(v):
    if v in ("", "NULL"):
        return None
    if len(v) > 1 and v[0] == "'" and v[1] in "=+-@\t\r":
        v = v[1:]  # trail's CSV guard against spreadsheet formulas
    m = _TS.match(v)
    if m:
        frac = (m.group(3) or "").rstrip("0").rstrip(".")
        return f"{m.group(1)} {m.group(2)}{frac}"
    if _INT.match(v):
        return int(v)
    if _FLOAT.match(v):
        return round(float(v), 6)
    return v


def rows(csv_text):
    """A CSV result (header first) as sorted, normalized rows, header dropped."""
    reader = list(csv.reader(io.StringIO(csv_text)))
    body = [tuple(norm_cell(c) for c in r) for r in reader[1:] if r]
    return sorted(body, key=repr)


def same_answer(name, a_label, a_csv, b_label, b_csv):
    a, b = rows(a_csv), rows(b_csv)
    if a != b:
        only_a = [r for r in a if r not in b][:5]
        only_b = [r for r in b if r not in a][:5]
        sys.exit(f"{name}: {a_label} and {b_label} disagree ({len(a)} against {len(b)} rows)\n"
                 f"  only {a_label}: {only_a}\n  only {b_label}: {only_b}")
    return len(a)


def split_trail_script_output(text):
    """`trail sql --format csv --timing -f` output: [(csv, seconds), ...] per statement."""
    out, cur = [], []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(?:OK \()?Time: ([0-9.]+)s\)?$", line.strip())
        if m:
            out.append(("".join(cur), float(m.group(1))))
            cur = []
        else:
            cur.append(line)
    return out


def split_duckdb_timer_output(text):
    """`duckdb -csv` with `.timer on`: [(csv, seconds), ...] per statement."""
    out, cur = [], []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^Run Time \(s\): real ([0-9.]+)", line.strip())
        if m:
            out.append(("".join(cur), float(m.group(1))))
            cur = []
        else:
            cur.append(line)
    return out
