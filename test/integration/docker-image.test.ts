// There is no Docker engine on the machines this project builds on, so this
// test runs what the Dockerfile's runtime stage runs, the same way: a folder
// with only package*.json, `npm ci --omit=dev`, the compiled dist/ and
// config/; then the image's CMD config must validate and the proxy must start
// without any devDependency. It keeps the Dockerfile honest.

import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let image: string;

beforeAll(async () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  // The commands below are the Dockerfile's; fail loudly if it changes them.
  expect(dockerfile).toContain('RUN npm ci --omit=dev');
  expect(dockerfile).toContain('COPY --from=build /app/dist ./dist');
  expect(dockerfile).toContain('COPY config ./config');
  expect(dockerfile).toContain('CMD ["node", "--max-semi-space-size=4", "dist/cli.js", "--config", "config/docker.yaml"]');
  // dist/ is built once for the whole run by test/global-setup.ts.
  image = mkdtempSync(join(tmpdir(), 'sqlcached-image-'));
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(image, f));
  // --prefer-offline: the packages are in npm's cache after the project's own npm ci.
  await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: image, timeout: 180_000 });
  cpSync(join(ROOT, 'dist'), join(image, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'config'), join(image, 'config'), { recursive: true });
}, 300_000);

afterAll(() => {
  if (image) rmSync(image, { recursive: true, force: true });
});

describe('the container image contents', () => {
  it('the CMD config validates with production dependencies only', async () => {
    // The admin port listens on all interfaces in the container: the token comes from the environment.
    const env = { ...process.env, SQLCACHED_ADMIN_TOKEN: 'container-admin-token-0123' };
    const { stdout } = await run('node', ['dist/cli.js', '--check', '--config', 'config/docker.yaml'], { cwd: image, env });
    expect(stdout).toContain('config ok');
    const refused = await run('node', ['dist/cli.js', '--check', '--config', 'config/docker.yaml'], { cwd: image, env: { ...process.env, SQLCACHED_ADMIN_TOKEN: '' } }).then(
      () => 'accepted',
      (err: { stderr: string }) => err.stderr,
    );
    expect(refused).toContain('admin.token: expected a token (or SQLCACHED_ADMIN_TOKEN)');
  });

  it('the proxy starts from the image contents and answers /health (no devDependency at run time)', async () => {
    const cfg = join(image, 'config', 'local.yaml');
    const yaml = readFileSync(join(image, 'config', 'docker.yaml'), 'utf8')
      .replace('listen: 0.0.0.0:6432', 'listen: 127.0.0.1:0')
      .replace('upstream: postgres:5432', 'upstream: 127.0.0.1:5432')
      .replace('listen: 0.0.0.0:6033', 'listen: 127.0.0.1:0')
      .replace('upstream: mysql:3306', 'upstream: 127.0.0.1:3306')
      .replace('listen: 0.0.0.0:9090', 'listen: 127.0.0.1:0');
    writeFileSync(cfg, yaml);
    const child = spawn('node', ['--max-semi-space-size=4', 'dist/cli.js', '--config', cfg], { cwd: image });
    try {
      const line = await new Promise<string>((resolveLine, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const found = out.split('\n').find((l) => l.includes('"msg":"listening"'));
          if (found) resolveLine(found);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
        setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
      });
      const admin = (JSON.parse(line) as { admin: { port: number } }).admin;
      const health = await fetch(`http://127.0.0.1:${admin.port}/health`);
      expect(health.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
