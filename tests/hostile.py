"""Hostile strings an attacker would put into every text field of a file gridgov reads.

Each payload that could run script sets ``window.__xss`` (or calls ``alert``), so a browser
test sees at once whether any of them ran. None names a real host: a payload that loaded
anything would go to the loopback discard port.
"""

from __future__ import annotations

FLAG = "__xss"
PAYLOADS: tuple[str, ...] = (
    # script and event-handler HTML
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=1\">",
    "<img src=x onerror=alert(document.domain)>",
    "<svg onload=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "<body onload=window.__xss=1>",
    "<iframe srcdoc=\"<script>parent.__xss=1</script>\"></iframe>",
    "<details open ontoggle=window.__xss=1>",
    "<input autofocus onfocus=window.__xss=1>",
    "<video><source onerror=\"window.__xss=1\"></video>",
    "<marquee onstart=window.__xss=1>x</marquee>",
    "<object data=\"javascript:window.__xss=1\"></object>",
    "<math><mi xlink:href=\"javascript:window.__xss=1\">x</mi></math>",
    "<base href=\"http://127.0.0.1:9/\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=1\">",
    "<div style=\"background:url(javascript:window.__xss=1)\">x</div>",
    # attribute and element breakouts
    "\"><script>window.__xss=1</script>",
    "'><img src=x onerror=window.__xss=1>",
    "\" onmouseover=\"window.__xss=1\" x=\"",
    "' onfocus='window.__xss=1' autofocus='",
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    "</script><script>window.__xss=1</script>",
    "</style><script>window.__xss=1</script>",
    "<!--<script>window.__xss=1</script>-->",
    "\"-window.__xss=1-\"",
    "';window.__xss=1;//",
    # javascript: and data: URLs
    "javascript:window.__xss=1",
    " JaVaScRiPt:alert(document.domain)",
    "data:text/html,<script>window.__xss=1</script>",
    # template syntax: Jinja2, JS template literals, backticks, others
    "{{7*7}}",
    "SSTI-{{7*7}}-{{ cycler.__init__.__globals__.os.getcwd() }}-END",
    "{% for x in range(3) %}{{x}}{% endfor %}",
    "{{'</script>'}}",
    "${alert(1)}",
    "${window.__xss=1}",
    "`;window.__xss=1;`",
    "`${window.__xss=1}`",
    "#{7*7}<%= 7*7 %>",
    # entities and escapes
    "&lt;script&gt;window.__xss=1&lt;/script&gt;",
    "&#60;img src=x onerror=window.__xss=1&#62;",
    "&amp;&quot;&#x27;&#0;",
    "\\u003cscript\\u003ewindow.__xss=1\\u003c/script\\u003e",
    "%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E",
    # bidirectional, zero-width and control characters
    "\u202egnp.exe 反转",
    "\u200b\u200c\u200d\u2060\ufeff零宽",
    "a\x00b NUL",
    "\x01\x07\x1b[31m\x7f控制",
    "line\u2028sep\u2029para",
    # formulas (exports)
    "=HYPERLINK(\"http://127.0.0.1:9/\",\"点击\")",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3",
    # sizes and prototypes
    "x" * 20_000,
    "<" * 300 + ">" * 300,
    "__proto__",
)
"""55 payloads (the corpus test puts each into every text field of a case and a station file)."""

assert len(set(PAYLOADS)) == len(PAYLOADS) >= 40
