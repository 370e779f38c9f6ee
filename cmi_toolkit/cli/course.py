"""``cmi-toolkit lab-cache``, ``course``, ``readme`` and ``tasks``: the course's cache, its HTML, the
generated README blocks and the task list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import defaults as D
from .common import _parser


@dataclass
class LabCacheArgs:
    results_dir: str = field(default=D.LAB_RESULTS_DIR, metadata={"help": "the lab's result store"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR"})


def cmd_lab_cache(argv: list[str]) -> int:
    """Train what the course's lab cache lacks (the lambda sweep and notebook 03's views)."""
    from ..course.lab import build_cache
    from ..runs.engine import EngineArgs

    args, engine = _parser((LabCacheArgs, EngineArgs)).parse_args_into_dataclasses(argv)
    print(build_cache(args.results_dir, args.glue_dir, engine))
    return 0


@dataclass
class CourseArgs:
    executed: str = field(default="notebooks/outputs/executed",
                          metadata={"help": "folder of the executed modules (NN_*.ipynb, e.g. from `make course`)"})
    out: str = field(default="notebooks/outputs/course", metadata={"help": "folder of the rendered pages"})


def cmd_course(argv: list[str]) -> int:
    """Render the executed course modules to static HTML pages with an index (see `make course`)."""
    from ..course.render import render_course

    (args,) = _parser(CourseArgs).parse_args_into_dataclasses(argv)
    pages = render_course(args.executed, args.out)
    print(f"{len(pages) - 1} module(s) rendered: open {pages[-1]}")
    return 0


@dataclass
class ReadmeArgs:
    readme: str | None = field(default=None, metadata={
        "help": "one Markdown file whose '<!-- table: ... -->' blocks to regenerate; default: README.md, every "
                "docs/*.md page, their HTML twins and docs/index.html"})
    check: bool = field(default=False, metadata={"help": "only compare: exit 1 when a block differs from the records"})


def cmd_readme(argv: list[str]) -> int:
    """Regenerate the README's and the docs pages' result blocks from the run records, the pages' HTML twins and
    the offline index (--check only compares)."""
    from ..pages import update_pages

    (args,) = _parser(ReadmeArgs).parse_args_into_dataclasses(argv)
    changed = update_pages(check=args.check, only=args.readme)
    verb = "differ from the records" if args.check else "regenerated"
    print(f"{len(changed)} block(s) or page(s) {verb}" + (": " + "; ".join(changed) if changed else ""))
    return 1 if args.check and changed else 0


def cmd_tasks(argv: list[str]) -> int:
    """List the GLUE tasks the kit knows."""
    from ..data.tasks import TASKS

    for t in TASKS.values():
        labels = ", ".join(t.label_names) if t.label_names else "regression"
        print(f"{t.hub_config:6s} {t.name:6s} columns={list(t.text_columns)} labels=[{labels}] metric={','.join(t.metric_names)}")
    return 0
