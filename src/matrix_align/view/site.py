"""``matrix-align view``: a trace, a ``generate`` folder or an ``evaluate`` folder -> a static site.

The site is plain files (HTML, one stylesheet, one script, an icon, copied plots) that open
from disk or from the localhost server in ``serve``; it loads nothing from anywhere else.
Every page is rendered by Jinja with autoescaping and carries a Content-Security-Policy
that forbids inline scripts and other origins, so model text, which is untrusted, can only
ever be shown as text.

The site is built in a staging folder beside the output and swapped in at the end: a failed
build leaves the previous site intact, and a re-run never mixes pages of two datasets.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError

from matrix_align.errors import MatrixAlignError
from matrix_align.folders import ERRORS, SAMPLES, SUMMARY
from matrix_align.io import temp_beside, writable_folder
from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAG_HELP
from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.dataset import SampleRow, is_dataset_folder, read_dataset
from matrix_align.view.evaluation import (
    REPORT,
    REPORT_LINKS,
    RESULTS,
    SITE_MARKER,
    is_evaluation_folder,
    read_evaluation,
)
from matrix_align.view.markdown import render_markdown
from matrix_align.view.scene_page import scene_page
from matrix_align.view.summary import summary_blocks

Kind = Literal["scene", "dataset", "evaluation"]
ASSETS = ("view.css", "view.js", "icon.svg")
EXPECTED = (
    "a scene trace (.json, from `matrix-align simulate --trace-out`), a `generate` output "
    f"folder (with {SAMPLES}) or an `evaluate` output folder (with {RESULTS} or {REPORT})"
)


@dataclass
class Site:
    kind: Kind
    source: Path
    out: Path
    pages: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def detect(path: Path) -> tuple[Kind, Path]:
    """What ``path`` is, checked before any work starts; a clear error when it is none."""
    if not path.exists():
        raise MatrixAlignError(f"{path} does not exist.", hint=f"Give {EXPECTED}.")
    if path.is_file() and path.name in (SAMPLES, ERRORS, SUMMARY):
        path = path.parent  # a file of a generate folder stands for the folder
    elif path.is_file() and path.name in (RESULTS, REPORT):
        path = path.parent
    if not path.is_dir() and not path.is_file():
        # A named pipe or a device would block the read forever, or never end.
        raise MatrixAlignError(
            f"{path} is not a regular file or a folder.", hint=f"Give {EXPECTED}."
        )
    if path.is_dir():
        if is_dataset_folder(path):
            return "dataset", path
        if is_evaluation_folder(path):
            return "evaluation", path
        raise MatrixAlignError(
            f"{path} is a folder, but neither a `generate` output (no {SAMPLES}) nor an "
            f"`evaluate` output (no {RESULTS} or {REPORT}).",
            hint=f"Give {EXPECTED}.",
        )
    return "scene", path


def load_trace(path: Path) -> SceneTrace:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixAlignError(
            f"{path} is not a text file, so not a scene trace.", hint=f"Give {EXPECTED}."
        ) from exc
    try:
        return SceneTrace.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise MatrixAlignError(
            f"{path} is not a scene trace ({problems}).", hint=f"Give {EXPECTED}."
        ) from exc


def default_out(kind: Kind, source: Path) -> Path:
    """``NAME-view/`` beside a trace file; ``view/`` inside a generate or evaluate folder."""
    if kind == "scene":
        return source.with_name(f"{source.stem}-view")
    return source / "view"


def page_name(sample_id: str) -> str:
    """A file name for a sample's page: the id itself when it is a safe name, else its hash
    (ids come from data files and must never steer a path out of the site)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}", sample_id):
        return f"{sample_id}.html"
    return hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:32] + ".html"


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _secs(value: float) -> str:
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("matrix_align.view", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["secs"] = _secs
    env.globals["flag_help"] = FLAG_HELP
    env.globals["drop_flags"] = DROP_BY_DEFAULT
    try:
        env.globals["version"] = metadata.version("matrix-align")
    except metadata.PackageNotFoundError:
        env.globals["version"] = ""
    return env


class _Writer:
    """Renders pages into the staging folder, relative to the site root."""

    def __init__(self, root: Path, source: Path) -> None:
        self.root = root
        self.env = _environment()
        self.env.globals["source_name"] = source.name
        self.pages = 0

    def page(self, relative: str, template: str, **context: Any) -> str:
        depth = relative.count("/")
        html = self.env.get_template(template).render(root="../" * depth, **context)
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        self.pages += 1
        return relative

    def assets(self) -> None:
        folder = self.root / "assets"
        folder.mkdir(parents=True, exist_ok=True)
        static = resources.files("matrix_align.view") / "static"
        for name in ASSETS:
            try:
                payload = (static / name).read_bytes()
            except FileNotFoundError as exc:
                raise MatrixAlignError(
                    f"this installation of matrix-align lacks its view asset {name}.",
                    hint="reinstall matrix-align (the package data must include "
                    "view/static/*.css, *.js and *.svg)",
                ) from exc
            (folder / name).write_bytes(payload)
        (self.root / SITE_MARKER).write_text("written by matrix-align view\n", encoding="utf-8")


def _check_replaceable(out: Path) -> None:
    """Only an empty folder or a site this command wrote may be replaced: ``--out`` pointing
    at the wrong folder must never delete someone's files."""
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SITE_MARKER).exists())
    ):
        raise MatrixAlignError(
            f"{out} exists and is not a site written by `matrix-align view`; not replacing it.",
            hint="Choose another --out, or remove that folder first.",
        )


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` with the finished ``staging`` folder."""
    _check_replaceable(out)
    if out.exists():
        old = temp_beside(out, folder=True)
        old.rmdir()  # a free name for the old site, swept like the staging folder if killed
        try:
            out.rename(old)
        except OSError as exc:
            # A folder that cannot be moved (immutable, on a read-only mount, owned by
            # someone else in a sticky folder) cannot be replaced: the writable parent
            # checked before the build does not prove it.
            raise MatrixAlignError(
                f"Cannot replace {out}: {exc.strerror or exc}.",
                hint="Choose another --out, or make that folder replaceable "
                "(e.g. chattr -i, or remove it first).",
            ) from None
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def build_site(path: Path | str, out: Path | str | None = None) -> Site:
    """Write the site for ``path`` (a trace, a generate folder or an evaluate folder)."""
    kind, source = detect(Path(path))
    trace = load_trace(source) if kind == "scene" else None  # fail before writing anything
    target = Path(out) if out is not None else default_out(kind, source)
    _check_replaceable(target)
    writable_folder(target.parent, "the folder of --out")
    staging = temp_beside(target, folder=True)  # a killed build's leftovers are swept here
    site = Site(kind, source, target)
    try:
        writer = _Writer(staging, source)
        writer.assets()
        if trace is not None:
            _scene_site(writer, trace)
        elif kind == "dataset":
            site.warnings = _dataset_site(writer, source)
        else:
            site.warnings = _evaluation_site(writer, source)
        site.pages = writer.pages
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return site


def _scene_site(writer: _Writer, trace: SceneTrace) -> None:
    writer.page(
        "index.html",
        "scene.html.j2",
        page=scene_page(trace),
        page_kind="scene",
        back=None,
        crumb="scene",
        extra_meta=[],
    )


def _dataset_site(writer: _Writer, folder: Path) -> list[str]:
    back = {"href": "../index.html", "label": folder.name}

    def on_scene(row: SampleRow, trace: SceneTrace) -> str:
        meta = [("sample", row.id), ("source", row.source), ("mode", row.mode)]
        return writer.page(
            f"scenes/{page_name(row.id)}",
            "scene.html.j2",
            page=scene_page(trace, flags=row.flags if row.mode == "matrix" else None),
            page_kind="scene",
            back=back,
            crumb=row.id[:12],
            extra_meta=meta,
        )

    data = read_dataset(folder, on_scene)
    writer.page(
        "index.html",
        "dataset.html.j2",
        data=data,
        page_kind="dataset",
        summary=summary_blocks(data.summary),
        folder_name=folder.name,
    )
    return data.warnings


def _evaluation_site(writer: _Writer, folder: Path) -> list[str]:
    back = {"href": "../index.html", "label": folder.name}
    (writer.root / "plots").mkdir(exist_ok=True)

    def copy_plot(png: Path) -> str:
        name = png.relative_to(folder).as_posix().replace("/", "__")
        shutil.copyfile(png, writer.root / "plots" / name)
        return f"plots/{name}"

    def on_scene(name: str, trace: SceneTrace, label: str) -> str:
        return writer.page(
            f"scenes/{page_name(name)}",
            "scene.html.j2",
            page=scene_page(trace),
            page_kind="scene",
            back=back,
            crumb=label,
            extra_meta=[],
        )

    data = read_evaluation(folder, copy_plot, on_scene)
    images = {p.name: p.href for p in data.plots}
    report, shown = (
        render_markdown(data.report, images, REPORT_LINKS) if data.report else ("", set())
    )
    writer.page(
        "index.html",
        "evaluation.html.j2",
        data=data,
        page_kind="evaluation",
        report=report,
        other_plots=[p for p in data.plots if p.name not in shown],
        run=summary_blocks(data.run),
        folder_name=folder.name,
    )
    return data.warnings
