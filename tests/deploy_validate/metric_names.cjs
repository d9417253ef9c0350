// Which metric names the monitoring pack (deploy/monitoring) may use: the
// names a running `stateside` really exports (its /metrics page), plus a short
// list of external metrics from other exporters, and nothing else. Used by
// monitoring_test.cjs; kept apart so that its own rejections can be tested.
'use strict';

// Metrics the pack reads from other exporters. Each must be named in
// docs/OPERATIONS.md ("Monitoring pack"); no stateside_ or process_ name may
// be listed here (those must come from the sidecar itself).
const EXTERNAL_METRICS = new Map([
  ['kube_pod_status_ready', 'kube-state-metrics'],
  ['redis_memory_used_bytes', 'redis_exporter'],
  ['redis_memory_max_bytes', 'redis_exporter'],
]);

// Every series name a Prometheus text page (format 0.0.4) carries: the
// families of its `# TYPE` lines (with _bucket/_sum/_count for histograms,
// _sum/_count for summaries) and the name of every sample line. A family
// without a sample is not printed by prometheus-cpp, so the caller must have
// made one first.
function exportedMetricNames(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
    if (type) {
      names.add(type[1]);
      if (type[2] === 'histogram') ['_bucket', '_sum', '_count'].forEach((s) => names.add(type[1] + s));
      if (type[2] === 'summary') ['_sum', '_count'].forEach((s) => names.add(type[1] + s));
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]);
  }
  return names;
}

// Words of PromQL that stand where a metric name could and are not one.
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring',
                          'group_left', 'group_right', 'offset', 'inf', 'nan']);

// The metric names a PromQL expression selects. A conservative tokenizer,
// not a parser: it drops string literals, Grafana variables ($x, ${x}),
// label matchers {…}, ranges and subqueries […], `offset <duration>` and the
// label lists of by/without/on/ignoring/group_left/group_right; of the
// identifiers left, one followed by `(` is a function or an aggregation, a
// keyword is a keyword, and every other one is a metric name. A Grafana
// `label_values(<selector>, <label>)` query counts its selector only.
function promqlMetricNames(expr) {
  let e = String(expr);
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  e = e.replace(/\blabel_values\s*\(([^,()]*(?:\{[^}]*\})?[^,()]*),[^)]*\)/g, '($1)');
  e = e.replace(/\$\{[^}]*\}|\$\w+/g, '');
  e = e.replace(/\{[^}]*\}/g, '{}');
  e = e.replace(/\[[^\]]*\]/g, '');
  e = e.replace(/\boffset\s+-?[\w.]+/g, '');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set();
  for (const m of e.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) {
    const rest = e.slice(m.index + m[1].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[1].toLowerCase())) continue;
    names.add(m[1]);
  }
  return names;
}

// [{where, expr}] of every expression of a rules file's groups.
function ruleExprs(groups) {
  return groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert || r.record}`, expr: r.expr })));
}

// [{where, expr}] of a Grafana dashboard: every panel target (rows' nested
// panels included) and every query variable.
function dashboardExprs(dashboard) {
  const out = [];
  const walk = (panels) => {
    for (const p of panels || []) {
      for (const t of p.targets || []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const v of (dashboard.templating && dashboard.templating.list) || []) {
    if (v.type !== 'query') continue;
    out.push({ where: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query });
  }
  return out;
}

// ["where: name"] for each metric an expression names that is neither
// exported (`known`) nor an external metric; also an expression with no
// metric name at all (the tokenizer missed it, or the panel is empty).
function unknownMetrics(exprs, known) {
  const problems = [];
  for (const { where, expr } of exprs) {
    const names = promqlMetricNames(expr);
    if (names.size === 0) problems.push(`${where}: no metric name in ${JSON.stringify(expr)}`);
    for (const n of names) {
      if (!known.has(n) && !EXTERNAL_METRICS.has(n)) problems.push(`${where}: ${n}`);
    }
  }
  return problems;
}

module.exports = { EXTERNAL_METRICS, exportedMetricNames, promqlMetricNames, ruleExprs, dashboardExprs, unknownMetrics };
