// Clang's thread-safety analysis over the product code: every translation
// unit of sidecar/, client/ and app/ in the build's compile_commands.json,
// re-parsed by clang++-14 with -fsyntax-only (no code generated, nothing
// linked: the product stays built by g++) and -Werror=thread-safety, so an
// access to an ABSL_GUARDED_BY field without its mutex, or a call that needs
// a lock the caller does not hold, fails the suite.
//
//   node tests/rules/thread_safety_check.cjs BUILD_DIR [JOBS]
//
// Exit 0: clean; 1: findings (printed); 2: could not run (no clang, no
// compile_commands.json).
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CLANG = process.env.STATESIDE_CLANG || 'clang++-14';
const FLAGS = ['-fsyntax-only', '-Wno-everything', '-Wthread-safety', '-Wthread-safety-beta',
               '-Werror=thread-safety', '-Werror=thread-safety-beta'];

function fail(message, code) {
  console.error(`thread_safety_check: ${message}`);
  process.exit(code);
}

const buildDir = path.resolve(process.argv[2] || 'build');
const jobs = Number(process.argv[3] || os.cpus().length || 2);
const db = path.join(buildDir, 'compile_commands.json');
if (!fs.existsSync(db)) fail(`${db} not found: configure the build first`, 2);
try {
  execFileSync(CLANG, ['--version'], { stdio: 'ignore' });
} catch {
  fail(`${CLANG} not found (Debian package clang-14)`, 2);
}
const root = path.resolve(process.env.STATESIDE_SOURCE_DIR || path.join(__dirname, '..', '..'));

// Each entry's command line for clang: the launcher and the compiler
// replaced, the output dropped. CMake writes `command` as a shell line (with
// its escapes: -DSTATESIDE_VERSION=\"0.1.0\"), so it is run by sh.
function commandOf(entry) {
  const words = entry.command.split(/\s+/).filter(Boolean);
  let i = 0;
  while (i < words.length && !words[i].startsWith('-')) i++;
  const out = [CLANG];
  for (let j = i; j < words.length; j++) {
    if (words[j] === '-o' || words[j] === '-MF' || words[j] === '-MT') { j++; continue; }
    if (words[j] === '-MD') continue;
    out.push(words[j]);
  }
  return out.concat(FLAGS).join(' ');
}

const units = JSON.parse(fs.readFileSync(db, 'utf8')).filter((e) => {
  const rel = path.relative(root, path.resolve(e.directory, e.file));
  return /^(sidecar|client|app)\//.test(rel);
});
if (units.length < 50) fail(`only ${units.length} product files in ${db}: wrong build directory?`, 2);

let next = 0, failed = 0, done = 0;
function runOne() {
  if (next >= units.length) return Promise.resolve();
  const entry = units[next++];
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', commandOf(entry)], { cwd: entry.directory });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => {
      done++;
      if (code !== 0) {
        failed++;
        process.stdout.write(`== ${path.relative(root, entry.file)}\n${stderr}\n`);
      }
      resolve();
    });
  }).then(runOne);
}
Promise.all(Array.from({ length: Math.max(1, jobs) }, runOne)).then(() => {
  console.log(`thread_safety_check: ${done} files, ${failed} with findings`);
  process.exit(failed === 0 ? 0 : 1);
});
