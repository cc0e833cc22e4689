"""`GET /`: the status page. Plain server-rendered HTML (no script, no build step, readable with
JavaScript off): the policy and inventory in force with the last reload error, the cluster view, each
site's stock per flavor as a bar (from `/v1/sites`' own numbers), and the recent decisions of this
worker with their reasons."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, current_app, jsonify, render_template_string, request

from extender.engine import stock
from extender.ops.recent import RecentDecisions
from extender.protocol.routes import extender
from extender.protocol.sites import owners

bp = Blueprint("status_page", __name__)

EXTENSION_KEY = "site_extender_recent"
DEFAULT_SITES_SHOWN = 500
"""A page over thousands of sites stays readable and small; `?sites=N` shows more, /v1/sites has all."""


def recent() -> RecentDecisions:
    return current_app.extensions[EXTENSION_KEY]


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "-"


def _share(part: float, whole: float) -> int:
    return 0 if whole <= 0 else max(0, min(100, round(100 * part / whole)))


@bp.get("/")
def status() -> Response | tuple[Response, int]:
    service = extender()
    asked = request.args.get("sites", str(DEFAULT_SITES_SHOWN))
    if not asked.isdigit() or int(asked) < 1:
        return jsonify(error=f"sites: expected a positive whole number of sites to show, got {asked!r}"), 400
    shown = int(asked)
    _, snapshot = service.view()
    sites = list(snapshot.inventory.sites.values())
    held = owners(service)
    rows = [stock.site_stock(snapshot, site, held) for site in sites[:shown]]
    try:
        package_version = version("site-extender")
    except PackageNotFoundError:
        package_version = "unknown"
    html = render_template_string(
        PAGE,
        version=package_version,
        policy=service.policies.status(),
        cluster=service.cluster.stats(),
        synced=service.cluster.synced(),
        sites=rows,
        total_sites=len(sites),
        decisions=recent().latest(),
        when=_when,
        share=_share,
    )
    return Response(html, status=200, mimetype="text/html")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>site-extender status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1a1a1a; }
h1 { font-size: 1.4em; margin: 0 0 .5em; } h2 { font-size: 1.15em; margin: 1.5em 0 .5em; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2em .6em; vertical-align: top; }
th { border-bottom: 1px solid #999; } tr.site td { border-top: 1px solid #ddd; }
.bar { display: inline-block; width: 10em; height: .9em; background: #e4e4e4; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #2e7d32; }
.bar.low span { background: #c62828; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.error { color: #b71c1c; font-weight: bold; } .muted { color: #666; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; } dt { font-weight: bold; }
</style>
</head>
<body>
<h1>site-extender {{ version }}</h1>

<h2 id="policy">Policy and inventory</h2>
<dl>
<dt>Policy</dt><dd>{{ policy.path }}</dd>
<dt>Inventory</dt><dd>{{ policy.inventory }} ({{ policy.sites }} sites)</dd>
<dt>Generation</dt><dd>{{ policy.generation }}, loaded {{ when(policy.loaded_at) }}; {{ policy.reloads }} reload(s), {{ policy.reload_errors }} failed</dd>
<dt>Last reload error</dt><dd>{% if policy.last_reload_error %}<span class="error">{{ policy.last_reload_error }}</span> ({{ when(policy.last_reload_error_at) }}; the last good policy keeps serving){% else %}none{% endif %}</dd>
<dt>Cluster</dt><dd>{{ cluster.mode }}, {% if synced %}synced{% else %}<span class="error">not synced</span>{% endif %}: {{ cluster.nodes }} nodes, {{ cluster.pods }} pods{% if cluster.reservations %}, {{ cluster.reservations }} reservation(s) in flight{% endif %}</dd>
</dl>

<h2 id="sites">Sites</h2>
{% if sites|length < total_sites %}<p class="muted">Showing {{ sites|length }} of {{ total_sites }} sites (<a href="?sites={{ total_sites }}">show all</a>; <a href="v1/sites">/v1/sites</a> has every number).</p>{% endif %}
<table>
<thead><tr><th>Site</th><th>Status</th><th>Region / zone</th><th>Flavor</th><th>Stock left</th><th class="num">Left</th><th class="num">Total</th><th class="num">Placed</th><th>EIPs left</th><th class="num">VMs placed</th></tr></thead>
<tbody>
{% for site in sites %}
{% set flavors = site.flavors|selectattr("total")|list %}
{% for flavor in (flavors or [none]) %}
<tr{% if loop.first %} class="site" id="site-{{ site.id }}"{% endif %}>
{% if loop.first %}
<td rowspan="{{ flavors|length or 1 }}"><strong>{{ site.id }}</strong></td>
<td rowspan="{{ flavors|length or 1 }}">{% if site.available %}{{ site.status }}{% else %}<span class="error">{{ site.status }}</span>{% endif %}</td>
<td rowspan="{{ flavors|length or 1 }}">{{ site.region }} / {{ site.availability_zone }}</td>
{% endif %}
{% if flavor %}
{% set pct = share(flavor.left, flavor.total) %}
<td>{{ flavor.flavor }}</td>
<td><span class="bar{% if pct < 20 %} low{% endif %}" title="{{ flavor.left }} of {{ flavor.total }} left"><span style="width: {{ pct }}%"></span></span> {{ pct }}%</td>
<td class="num">{{ flavor.left }}</td><td class="num">{{ flavor.total }}</td><td class="num">{{ flavor.placed }}</td>
{% else %}
<td colspan="5" class="muted">no flavor of its region fits its hosts</td>
{% endif %}
{% if loop.first %}
<td rowspan="{{ flavors|length or 1 }}">{% if site.eip %}{{ site.eip.left }} of {{ site.eip.size }} ({{ site.eip.pool }}){% else %}-{% endif %}</td>
<td rowspan="{{ flavors|length or 1 }}" class="num">{{ site.placed.vms }}</td>
{% endif %}
</tr>
{% endfor %}
{% endfor %}
</tbody>
</table>

<h2 id="decisions">Recent decisions</h2>
{% if decisions %}
<table>
<thead><tr><th>Time</th><th>Verb</th><th>Pod</th><th>Outcome</th><th>Why</th></tr></thead>
<tbody>
{% for d in decisions %}
<tr class="site">
<td>{{ when(d.at) }}</td><td>{{ d.verb }}</td><td>{{ d.pod }}</td>
<td>{% if d.error %}<span class="error">{{ d.outcome }}</span>{% else %}{{ d.outcome }}{% endif %}</td>
<td>{% if d.by_rule %}{% for rule, count in d.by_rule %}{{ rule }}: {{ count }}{% if not loop.last %}, {% endif %}{% endfor %}
<ul>{% for node, reason in d.reasons %}<li>{{ node }}: {{ reason }}</li>{% endfor %}</ul>{% endif %}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p class="muted">No decision yet since this worker started.</p>
{% endif %}
<p class="muted">This worker's view; JSON: <a href="v1/sites">/v1/sites</a>, <a href="readyz">/readyz</a>, <a href="metrics">/metrics</a>.</p>
</body>
</html>
"""
