// Once per test run: compile src/ to dist/, which the tests that run the
// command the way users do (process, container image) start. Built here,
// once, so two test files never write dist/ at the same time.

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: resolve(import.meta.dirname, '..'), stdio: 'inherit', timeout: 180_000 });
}
