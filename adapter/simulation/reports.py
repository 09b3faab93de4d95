"""The ketensimulatie's reports: JUnit XML for CI, and one self-contained HTML page for people.

The HTML page has every scenario, step and expectation, and the messages exchanged with personal data masked
(``adapter.privacy``: BSN, names, addresses, contact details). It loads nothing from elsewhere.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from adapter.privacy import show_xml
from adapter.simulation.results import ScenarioResult
from adapter.xmlsafe import Limits


def junit(results: Sequence[ScenarioResult]) -> bytes:
    """One testsuite, one testcase per scenario; a failed expectation or step is its failure, named in full."""
    failures = sum(not r.ok for r in results)
    suite = ET.Element(
        "testsuite",
        name="ketensimulatie",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped=str(sum(r.skipped is not None for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(r.scenario.source).stem if r.scenario.source else "scenario",
            name=r.scenario.id,
            time=f"{r.seconds:.3f}",
        )
        lines = [c.line() for c in r.checks if not c.ok] + ([r.error] if r.error else [])
        if r.skipped:
            ET.SubElement(case, "skipped", message=r.skipped)
        elif lines:
            failure = ET.SubElement(case, "failure", message=lines[0])
            failure.text = "\n".join(lines)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d232a; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.ok { color: #1b6e2f; } .failed { color: #a4161a; font-weight: 600; }
table { border-collapse: collapse; margin: .4em 0; } td, th { border-bottom: 1px solid #e3e6ea; padding: .2em .5em;
text-align: left; vertical-align: top; }
details { margin: .3em 0; } pre { background: #f6f7f9; padding: .5em; overflow: auto; max-height: 30em; }
"""


def html_report(results: Sequence[ScenarioResult]) -> str:
    """The whole run as one HTML page (no scripts, no external files)."""
    e = html.escape
    failed = sum(not r.ok for r in results)
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Ketensimulatie</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Ketensimulatie: {len(results) - failed} of {len(results)} scenarios passed</h1>",
        f"<p>{e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S'))} UTC. Personal data in the messages is masked.</p>",
        "<table><tr><th>Scenario</th><th>Result</th><th>Seconds</th><th>Description</th></tr>",
    ]
    for r in results:
        verdict = "<span class='ok'>ok</span>" if r.ok else "<span class='failed'>FAILED</span>"
        if r.skipped:
            verdict = f"skipped: {e(r.skipped)}"
        out.append(
            f"<tr><td><a href='#{e(r.scenario.id)}'>{e(r.scenario.id)}</a></td><td>{verdict}</td>"
            f"<td>{r.seconds:.1f}</td><td>{e(r.scenario.description)}</td></tr>"
        )
    out.append("</table>")
    for r in results:
        word = "skipped" if r.skipped else "ok" if r.ok else "FAILED"
        out.append(f"<h2 id='{e(r.scenario.id)}'>{e(r.scenario.id)}: {word}</h2>")
        out.append(f"<p>{e(r.scenario.description)}</p>")
        if r.scenario.preconditions:
            out.append("<p>Preconditions:</p><ul>" + "".join(f"<li>{e(p)}</li>" for p in r.scenario.preconditions))
            out.append("</ul>")
        if r.error:
            out.append(f"<p class='failed'>{e(r.error)}</p>")
        out.append("<table><tr><th>Step</th><th>Expectation</th><th>Expected</th><th>Actual</th><th></th></tr>")
        for c in r.checks:
            cls = "ok" if c.ok else "failed"
            out.append(
                f"<tr><td>{c.step} {e(c.step_text)}</td><td>{e(c.name)}</td><td>{e(c.expected)}</td>"
                f"<td>{e(c.actual)}</td><td class='{cls}'>{'ok' if c.ok else 'FAILED'}</td></tr>"
            )
        out.append("</table>")
        for step, what, text in r.exchanges:
            shown = show_xml(text.encode("utf-8"), masked=True, limits=Limits())[0]
            out.append(f"<details><summary>step {step}: {e(what)}</summary><pre>{e(shown)}</pre></details>")
    out.append("</body></html>")
    return "\n".join(out)
