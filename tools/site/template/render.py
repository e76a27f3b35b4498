"""Write the course website's static HTML from Jupyter Book's content (the template's `render` step).

Jupyter Book (mystmd) parses README, notebooks and docs, then runs this with two
variables: CONTENT_CDN, a local server with the site's config (config.json), each
page's MyST AST (content/<slug>.json) and the files it extracted (plots, downloads);
and BUILD_DIRECTORY, where the HTML goes. One page per notebook, with its stored
outputs and plots, a link to download it and links to its exercise's stub files;
the README with the course map is the landing page. Python's standard library only,
and every link is relative, so the pages also work opened straight from disk.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Node = dict[str, Any]

# The staged course (build.py copies this template into it as _template/).
COURSE = Path(__file__).resolve().parent.parent
FILES = "files"  # where extracted images and downloads go, inside the build directory
REPORT = "render-report.json"  # read (and removed) by build.py
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTEBOOK_NUMBER = re.compile(r"/(\d\d)-[^/]*\.ipynb$")
# Richest first: what a reader of the notebook in JupyterLab would see.
MIME_ORDER = ("image/png", "image/jpeg", "image/svg+xml", "text/html", "text/markdown", "text/plain")

STYLE = """\
body { margin: 0; font: 16px/1.55 system-ui, sans-serif; color: #1f2328; display: flex; }
nav.toc { width: 17rem; flex: none; padding: 1.5rem 1rem; border-right: 1px solid #d0d7de;
  background: #f6f8fa; min-height: 100vh; box-sizing: border-box; font-size: 0.92rem; }
nav.toc a { display: block; padding: 0.15rem 0; color: #0969da; text-decoration: none; }
nav.toc a.current { font-weight: 600; color: #1f2328; }
nav.toc .section { margin-top: 1rem; font-weight: 600; color: #57606a; }
nav.toc .level-2 { padding-left: 0.6rem; }
main { flex: 1; min-width: 0; padding: 1.5rem 2.5rem; max-width: 60rem; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; border-radius: 6px; font-size: 0.85rem; }
pre.stream, pre.result { background: #fff; border-left: 3px solid #d0d7de; }
pre.stderr { border-left-color: #d4a72c; } pre.error { border-left-color: #cf222e; }
code { font-size: 0.88em; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; vertical-align: top; }
.outputs img { max-width: 100%; }
.page-links { background: #ddf4ff; border: 1px solid #54aeff; border-radius: 6px; padding: 0.6rem 1rem; }
.admonition { border-left: 4px solid #0969da; padding: 0.2rem 1rem; background: #f6f8fa; margin: 1rem 0; }
"""


def fetch(path: str) -> bytes:
    base = os.environ["CONTENT_CDN"].rstrip("/")
    with urllib.request.urlopen(f"{base}/{path.lstrip('/')}", timeout=30) as response:
        body: bytes = response.read()
        return body


def fetch_json(path: str) -> Any:
    return json.loads(fetch(path))


def page_file(slug: str, index_slug: str) -> str:
    return "index.html" if slug in ("", index_slug) else f"{slug}.html"


class PageRenderer:
    """MyST AST of one page to HTML; remembers the extracted files the page uses."""

    def __init__(self, index_slug: str) -> None:
        self.index_slug = index_slug
        self.assets: set[str] = set()
        self.unknown: set[str] = set()
        self.handlers: dict[str, Callable[[Node], str]] = {
            "root": self.children,
            "block": self.block,
            "paragraph": lambda n: f"<p>{self.children(n)}</p>\n",
            "text": lambda n: html.escape(n.get("value", "")),
            "emphasis": lambda n: f"<em>{self.children(n)}</em>",
            "strong": lambda n: f"<strong>{self.children(n)}</strong>",
            "inlineCode": lambda n: f"<code>{html.escape(n.get('value', ''))}</code>",
            "inlineMath": lambda n: f"<code>{html.escape(n.get('value', ''))}</code>",
            "math": lambda n: f"<pre>{html.escape(n.get('value', ''))}</pre>\n",
            "break": lambda n: "<br>",
            "thematicBreak": lambda n: "<hr>\n",
            "blockquote": lambda n: f"<blockquote>{self.children(n)}</blockquote>\n",
            "html": lambda n: str(n.get("value", "")),
            "heading": self.heading,
            "list": self.list,
            "listItem": lambda n: f"<li>{self.children(n)}</li>\n",
            "table": lambda n: f"<table>{self.children(n)}</table>\n",
            "tableRow": lambda n: f"<tr>{self.children(n)}</tr>\n",
            "tableCell": self.table_cell,
            "link": self.link,
            "crossReference": self.cross_reference,
            "image": self.image,
            "code": self.code,
            "outputs": self.outputs,
            "output": self.output,
            "admonition": lambda n: f'<div class="admonition">{self.children(n)}</div>\n',
            "admonitionTitle": lambda n: f"<p><strong>{self.children(n)}</strong></p>\n",
        }

    def render(self, node: Node) -> str:
        if node.get("visibility") == "remove":
            return ""
        handler = self.handlers.get(node.get("type", ""))
        if handler is None:
            # Still show what it holds; the build log lists the types to support.
            self.unknown.add(str(node.get("type")))
            return self.children(node) if "children" in node else html.escape(str(node.get("value", "")))
        return handler(node)

    def children(self, node: Node) -> str:
        return "".join(self.render(child) for child in node.get("children", []))

    def url(self, url: str, *, static: bool = False) -> str:
        """A site-absolute MyST url to a link relative to the page (all pages are top level)."""
        if static:
            self.assets.add(url.lstrip("/"))
            return f"{FILES}/{url.lstrip('/')}"
        if url.startswith("/"):
            slug, _, fragment = url[1:].partition("#")
            return page_file(slug, self.index_slug) + (f"#{fragment}" if fragment else "")
        return url

    def heading(self, node: Node) -> str:
        depth = min(int(node.get("depth", 2)), 6)
        anchor = f' id="{html.escape(node["html_id"])}"' if node.get("html_id") else ""
        return f"<h{depth}{anchor}>{self.children(node)}</h{depth}>\n"

    def list(self, node: Node) -> str:
        if node.get("ordered"):
            start = node.get("start")
            opening = f'<ol start="{int(start)}">' if start else "<ol>"
            return f"{opening}{self.children(node)}</ol>\n"
        return f"<ul>{self.children(node)}</ul>\n"

    def table_cell(self, node: Node) -> str:
        tag = "th" if node.get("header") else "td"
        align = f' style="text-align:{node["align"]}"' if node.get("align") else ""
        return f"<{tag}{align}>{self.children(node)}</{tag}>"

    def link(self, node: Node) -> str:
        url = str(node.get("url", ""))
        target = self.url(url, static=bool(node.get("static"))) if url.startswith("/") else url
        return f'<a href="{html.escape(target)}">{self.children(node)}</a>'

    def cross_reference(self, node: Node) -> str:
        target = self.url(node["url"]) if node.get("url") else f"#{node.get('html_id', '')}"
        return f'<a href="{html.escape(target)}">{self.children(node)}</a>'

    def image(self, node: Node) -> str:
        source = str(node.get("url", ""))
        source = self.url(source, static=True) if source.startswith("/") else source
        return f'<img src="{html.escape(source)}" alt="{html.escape(str(node.get("alt", "")))}">'

    def block(self, node: Node) -> str:
        kind = html.escape(str(node.get("kind", "")))
        return f'<div class="cell {kind}">\n{self.children(node)}</div>\n'

    def code(self, node: Node) -> str:
        language = html.escape(str(node.get("lang") or ""))
        source = html.escape(node.get("value", ""))
        return f'<pre class="code"><code class="language-{language}">{source}</code></pre>\n'

    def outputs(self, node: Node) -> str:
        return f'<div class="outputs">{self.children(node)}</div>\n'

    def output(self, node: Node) -> str:
        data: Node = node.get("jupyter_data", {})
        kind = data.get("output_type")
        if kind == "stream":
            name = "stderr" if data.get("name") == "stderr" else "stdout"
            text = ANSI.sub("", self.text(data.get("text", "")))
            return f'<pre class="stream {name}">{html.escape(text)}</pre>\n'
        if kind == "error":
            error = f"{data.get('ename')}: {data.get('evalue')}"
            return f'<pre class="error">{html.escape(error)}</pre>\n'
        bundle: dict[str, Node] = data.get("data") or {}
        for mime in MIME_ORDER:
            if mime in bundle:
                return self.mime(mime, bundle[mime])
        return self.children(node)

    def text(self, value: Any) -> str:
        return "".join(value) if isinstance(value, list) else str(value)

    def mime(self, mime: str, value: Node) -> str:
        if mime.startswith("image/"):
            return f'<img src="{html.escape(self.url(value["path"], static=True))}" alt="plot">\n'
        # Large outputs are stored as files rather than inline.
        content = value["content"] if "content" in value else fetch(value["path"]).decode()
        if mime == "text/html":
            return f'<div class="result-html">{content}</div>\n'
        return f'<pre class="result">{html.escape(ANSI.sub("", content))}</pre>\n'


def exercise_files(location: str) -> list[Path]:
    """A notebook's exercise stub files (exercises/exNN_*.py, or every module of a package)."""
    number = NOTEBOOK_NUMBER.search(location)
    if not number:
        return []
    found: list[Path] = []
    for candidate in sorted((COURSE / "exercises").glob(f"ex{number.group(1)}_*")):
        if candidate.is_file() and candidate.suffix == ".py":
            found.append(candidate)
        elif candidate.is_dir():
            found.extend(p for p in sorted(candidate.rglob("*.py")) if "__pycache__" not in p.parts)
    return found


def page_links(page: Node, renderer: PageRenderer, out: Path) -> str:
    """Under a notebook's title: download the notebook, open its exercise's stub files."""
    links = []
    for export in page["frontmatter"].get("exports", []):
        if export.get("format") == "ipynb" and export.get("url"):
            target = renderer.url(export["url"], static=True)
            links.append(f'Notebook: <a href="{html.escape(target)}">{html.escape(export["filename"])}</a>')
    stubs = []
    for stub in exercise_files(page.get("location", "")):
        relative = stub.relative_to(COURSE).as_posix()
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stub, out / relative)
        stubs.append(f'<a class="exercise" href="{html.escape(relative)}">{html.escape(relative)}</a>')
    if stubs:
        links.append("Your exercise: " + ", ".join(stubs))
    return f'<p class="page-links">{" · ".join(links)}</p>\n' if links else ""


def navigation(pages: list[Node], index_slug: str, index_title: str, current: str) -> str:
    def entry(slug: str, title: str, level: int) -> str:
        mark = ' class="current"' if slug == current else ""
        href = html.escape(page_file(slug, index_slug))
        return f'<a{mark} class="level-{level}" href="{href}">{html.escape(title)}</a>'

    items = [entry(index_slug, index_title, 1)]
    for page in pages:
        if page.get("slug"):
            items.append(entry(page["slug"], page["title"], int(page.get("level", 1))))
        else:
            items.append(f'<div class="section">{html.escape(page.get("title", ""))}</div>')
    return '<nav class="toc">\n' + "\n".join(items) + "\n</nav>\n"


@dataclass
class Site:
    out: Path
    title: str
    index_slug: str
    pages: list[Node]
    renderer: PageRenderer


def write_page(site: Site, slug: str) -> None:
    out, site_title, index_slug, renderer = site.out, site.title, site.index_slug, site.renderer
    nav = navigation(site.pages, index_slug, site_title, slug)
    page: Node = fetch_json(f"content/{slug}.json")
    title = str(page["frontmatter"].get("title") or site_title)
    body = renderer.render(page["mdast"])
    heading = "" if page["frontmatter"].get("content_includes_title") else f"<h1>{html.escape(title)}</h1>\n"
    head_title = site_title if slug == index_slug else f"{title} · {site_title}"
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<title>{html.escape(head_title)}</title>\n<link rel="stylesheet" href="style.css">\n</head>\n'
        f"<body>\n{nav}<main>\n<article>\n{heading}{page_links(page, renderer, out)}{body}</article>\n"
        "</main>\n</body>\n</html>\n"
    )
    (out / page_file(slug, index_slug)).write_text(document, encoding="utf-8")


def main() -> int:
    out = Path(os.environ["BUILD_DIRECTORY"])
    out.mkdir(parents=True, exist_ok=True)
    config: Node = fetch_json("config.json")
    project: Node = config["projects"][0]
    index_slug = str(project.get("index", "index"))
    site_title = str(config.get("title") or project.get("title", ""))
    pages: list[Node] = project.get("pages", [])
    renderer = PageRenderer(index_slug)
    site = Site(out, site_title, index_slug, pages, renderer)
    slugs = [index_slug, *(p["slug"] for p in pages if p.get("slug"))]
    for slug in slugs:
        write_page(site, slug)
    (out / FILES).mkdir(exist_ok=True)
    for asset in sorted(renderer.assets):
        (out / FILES / asset).write_bytes(fetch(asset))
    (out / "style.css").write_text(STYLE, encoding="utf-8")
    # Jupyter Book does not show this step's output; build.py reads and prints the report.
    plain = sorted(renderer.unknown)
    report = {"pages": len(slugs), "files": len(renderer.assets), "plain_node_types": plain}
    (out / REPORT).write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
