"""The report's stylesheet (inline in the page: no network)."""

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb;
--ok:#059669;--bad:#dc2626;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",
sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#0f172a,#1e3a8a);color:#fff;padding:28px 40px 22px}
header h1{margin:4px 0 6px;font-size:30px;letter-spacing:-.01em}
.brand{font-size:13px;opacity:.75;letter-spacing:.06em;text-transform:uppercase}
.meta{font-size:13px;opacity:.8}
.badges{margin-top:12px}
.badge{display:inline-block;font-size:12px;padding:2px 9px;border-radius:999px;margin:0 6px 4px 0;
background:rgba(255,255,255,.14)}
.badge.finished{background:rgba(16,185,129,.28)}.badge.failed{background:rgba(239,68,68,.45)}
.badge.running{background:rgba(245,158,11,.4)}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
padding:8px 40px;display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:var(--muted);text-decoration:none;font-size:14px}nav a:hover{color:var(--accent)}
main{max-width:1180px;margin:0 auto;padding:12px 24px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 24px;
margin:18px 0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
h2{margin:0 0 12px;font-size:20px}h3{margin:18px 0 8px;font-size:15px;color:var(--muted)}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfe}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card .v{font-size:28px;font-weight:650;font-variant-numeric:tabular-nums}
.card .ci{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
.card.pass .v{color:var(--ok)}.card.fail .v{color:var(--bad)}
.warning{border-left:4px solid var(--warn);background:#fffbeb;padding:10px 14px;margin:0 0 14px;
border-radius:6px;color:#78350f}
.failure{border-left:4px solid var(--bad);background:#fef2f2;padding:10px 14px;margin:0 0 14px;
border-radius:6px;color:#7f1d1d}
.note{color:var(--muted);font-size:13px;margin:12px 0 0}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table.num td{font-variant-numeric:tabular-nums}
table.kv td:first-child{color:var(--muted);white-space:nowrap;width:1%}
table.metrics td:nth-child(2){font-weight:600}
.bar{display:inline-block;width:90px;height:8px;background:var(--line);border-radius:4px;
vertical-align:middle;margin-right:6px;overflow:hidden}
.bar span{display:block;height:100%;background:var(--accent)}
figure{margin:8px 0;text-align:center}
figure svg.plot{max-width:100%;height:auto}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
#training svg.plot,#curves svg.plot{width:100%}
#confusion svg.plot{width:min(640px,100%)}
#calibration svg.plot{width:min(460px,100%)}
#mistakes svg.plot{width:min(900px,100%)}
.row{display:flex;flex-wrap:wrap;align-items:center;gap:24px}.row figure{flex:0 1 460px}
.aside{flex:1 1 280px;color:var(--ink)}
pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:8px;overflow:auto;font-size:13px}
details summary{cursor:pointer;color:var(--accent);margin-top:10px}
footer{text-align:center;color:var(--muted);font-size:13px;padding:10px 20px 30px}
"""

# The compression and tuning sections: two scatter plots side by side, variant table, tags.
CSS += """
.row.pair{align-items:flex-start;gap:12px}.row.pair figure{flex:1 1 440px}
.row.pair svg.plot{width:100%}
table.variants td{font-size:13px}table.variants .ci{color:var(--muted);font-size:12px}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
ul.reasons{margin:4px 0 0;padding-left:16px;font-size:12px;color:var(--muted);max-width:280px}
.tag{display:inline-block;font-size:11px;padding:1px 7px;border-radius:999px;margin-left:4px}
.tag.chosen{background:#d1fae5;color:#065f46}
ul.gains{margin:4px 0;padding-left:20px}
#tuning svg.plot{width:min(640px,100%)}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure.optuna{flex:1 1 360px}
figure.optuna img{width:100%;height:auto;border:1px solid var(--line);border-radius:6px}
"""
