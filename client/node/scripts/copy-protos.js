// prepack: copies the repository's proto/stateside/v1/*.proto into the
// package's proto/ so that a packed tarball loads them without a checkout;
// postpack (--remove) deletes the copy again, so the checkout always loads
// the repository's own files.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.join(__dirname, '..');
const dest = path.join(pkg, 'proto');
if (process.argv.includes('--remove')) {
  fs.rmSync(dest, { recursive: true, force: true });
} else {
  const src = path.resolve(pkg, '..', '..', 'proto', 'stateside', 'v1');
  const files = fs.readdirSync(src).filter((f) => f.endsWith('.proto'));
  if (files.length === 0) throw new Error(`no .proto files in ${src}`);
  fs.mkdirSync(path.join(dest, 'stateside', 'v1'), { recursive: true });
  for (const f of files) fs.copyFileSync(path.join(src, f), path.join(dest, 'stateside', 'v1', f));
  console.log(`copied ${files.length} .proto files into ${dest}`);
}
