// Lints a Dockerfile, offline. hadolint is in neither Debian nor npm (the
// npm "hadolint" only downloads a binary), so this runs:
//   1. dockerfile-utils (npm; the linter of the VS Code Docker extension):
//      syntax and instruction errors (unknown instructions and flags, bad
//      arguments, duplicate CMD/ENTRYPOINT/HEALTHCHECK in a stage);
//   2. the hadolint rules that matter for deploy/docker, written out below,
//      plus this project's own: every image stage that is built (a stage no
//      other stage builds on) ends as a non-root USER, with STOPSIGNAL SIGTERM
//      and a HEALTHCHECK, inherited through `FROM <stage>` like Docker does.
//
//   node dockerfile_lint.cjs Dockerfile ...   exit 0 if clean, else 1
'use strict';
const fs = require('fs');
const { validate } = require('dockerfile-utils');

// Instructions with continuation lines joined and comments dropped:
// [{line (1-based), keyword, args}].
function instructions(text) {
  const out = [];
  let pending = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\s+$/, '');
    if (pending === null && (/^\s*#/.test(line) || line.trim() === '')) return;
    if (pending !== null && /^\s*#/.test(line)) return;  // comment inside a continuation
    const body = line.endsWith('\\') ? line.slice(0, -1) : line;
    if (pending === null) pending = { line: i + 1, text: body.trim() };
    else pending.text += ' ' + body.trim();
    if (!line.endsWith('\\')) {
      const m = /^(\S+)\s*(.*)$/.exec(pending.text);
      out.push({ line: pending.line, keyword: m[1].toUpperCase(), args: m[2] });
      pending = null;
    }
  });
  return out;
}

// Stages: [{name, base, line, insts}] in file order.
function stages(insts) {
  const list = [];
  for (const inst of insts) {
    if (inst.keyword === 'FROM') {
      const words = inst.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      list.push({ base: words[0], name: words[2] || null, line: inst.line, insts: [] });
    } else if (list.length > 0) {
      list[list.length - 1].insts.push(inst);
    }
  }
  return list;
}

const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|_KEYS?$)/;

function hadolintRules(text) {
  const problems = [];
  const report = (line, rule, message) => problems.push({ line, rule, message });
  const all = stages(instructions(text));
  const names = new Set(all.map((s) => s.name).filter(Boolean));
  const usedAsBase = new Set();

  for (const s of all) {
    if (names.has(s.base)) {
      usedAsBase.add(s.base);
    } else if (!/[:@]/.test(s.base.replace(/^[^/]*\//, ''))) {
      report(s.line, 'DL3006', `FROM ${s.base}: give the image an explicit tag`);
    } else if (/:latest$/.test(s.base)) {
      report(s.line, 'DL3007', `FROM ${s.base}: use a versioned tag, not latest`);
    }
    let pipefail = false;
    for (const inst of s.insts) {
      const { line, keyword, args } = inst;
      if (keyword === 'SHELL') pipefail = /pipefail/.test(args);
      if (keyword === 'COPY') {
        const from = /--from=(\S+)/.exec(args);
        if (from) usedAsBase.add(from[1]);
      }
      if (keyword === 'WORKDIR' && !args.startsWith('/') && !args.startsWith('$')) {
        report(line, 'DL3000', `WORKDIR ${args}: use an absolute path`);
      }
      if (keyword === 'ADD') report(line, 'DL3020', 'use COPY for files and folders, not ADD');
      if ((keyword === 'ENTRYPOINT' || keyword === 'CMD') && !args.trim().startsWith('[')) {
        report(line, 'DL3025', `${keyword}: use the JSON (exec) form, so that signals reach the program`);
      }
      if (keyword === 'ENV' || keyword === 'ARG') {
        for (const m of args.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)/g)) {
          if (SECRET_NAME.test(m[1]) && !m[1].endsWith('_FILE')) {
            report(line, 'secret', `${keyword} ${m[1]}: secrets must not be baked into image layers`);
          }
        }
      }
      if (keyword !== 'RUN') continue;
      if (/(^|[;&|]\s*)cd\s/.test(args)) report(line, 'DL3003', 'use WORKDIR instead of cd');
      if (/\bsudo\b/.test(args)) report(line, 'DL3004', 'do not use sudo');
      if (/apt-get\s+(-\S+\s+)*(dist-)?upgrade/.test(args)) report(line, 'DL3005', 'do not apt-get upgrade');
      if (/apt-get\s+(\S+\s+)*install/.test(args)) {
        if (!/\s(-y|--yes|-qq?y|--assume-yes)\b/.test(args)) report(line, 'DL3014', 'apt-get install needs -y');
        if (!/--no-install-recommends/.test(args)) report(line, 'DL3015', 'apt-get install needs --no-install-recommends');
      }
      if (/apt-get\s+(\S+\s+)*install|install_packages/.test(args) &&
          !/rm -rf \/var\/lib\/apt\/lists/.test(args)) {
        report(line, 'DL3009', 'remove /var/lib/apt/lists in the RUN that installs packages');
      }
      if (/[^|]\|[^|]/.test(args) && !pipefail) {
        report(line, 'DL4006', 'a pipe in RUN needs SHELL ["/bin/bash", "-o", "pipefail", "-c"] first');
      }
    }
  }

  // Built stages: what `docker build --target` would produce.
  const byName = new Map(all.filter((s) => s.name).map((s) => [s.name, s]));
  for (const s of all.filter((st) => !st.name || !usedAsBase.has(st.name))) {
    const chain = [];
    for (let st = s; st; st = byName.get(st.base)) chain.unshift(st);
    const last = (kw) => chain.flatMap((st) => st.insts).filter((i) => i.keyword === kw).pop();
    const label = s.name || `stage at line ${s.line}`;
    const user = last('USER');
    if (!user || /^(root|0)(:|$)/.test(user.args.trim())) {
      report(s.line, 'DL3002', `${label}: the last USER must be a non-root user`);
    }
    const stop = last('STOPSIGNAL');
    if (!stop || stop.args.trim() !== 'SIGTERM') report(s.line, 'stopsignal', `${label}: needs STOPSIGNAL SIGTERM`);
    const health = last('HEALTHCHECK');
    if (!health || /^NONE$/i.test(health.args.trim())) report(s.line, 'healthcheck', `${label}: needs a HEALTHCHECK`);
  }
  return problems;
}

// Every problem: [{line, rule, message}] (dockerfile-utils' under rule "syntax").
function lintDockerfile(text) {
  const syntax = validate(text)
      .filter((d) => d.severity <= 2)  // errors and warnings
      .map((d) => ({ line: d.range.start.line + 1, rule: 'syntax', message: d.message }));
  return syntax.concat(hadolintRules(text)).sort((a, b) => a.line - b.line);
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: node dockerfile_lint.cjs Dockerfile ...');
    return 2;
  }
  let bad = 0;
  for (const f of files) {
    for (const p of lintDockerfile(fs.readFileSync(f, 'utf8'))) {
      bad++;
      console.log(`${f}:${p.line}: ${p.rule}: ${p.message}`);
    }
  }
  console.log(`${files.length} Dockerfile(s) linted, ${bad} problems`);
  return bad === 0 ? 0 : 1;
}

module.exports = { lintDockerfile, instructions, stages };
if (require.main === module) process.exitCode = main(process.argv.slice(2));
