// POST /reload: re-read the config file, as SIGHUP does. 200 with what
// changed, or 422 with why the new file was refused (the running config
// stays in force either way it fails).

import { errorResponse, type Route } from './route.js';

export const reloadRoute: Route = {
  method: 'POST',
  path: '/reload',
  async handle(_req, deps) {
    if (deps.reload === undefined) return errorResponse(501, 'not implemented', { detail: 'this proxy has no config file to reload' });
    const outcome = await deps.reload();
    if (!outcome.ok) return errorResponse(422, 'config refused', { file: outcome.file, detail: outcome.error, kept: 'the running config' });
    return { status: 200, json: { reloaded: true, file: outcome.file, changed: outcome.changed, restart_required: outcome.restart_required } };
  },
};
