// The core issue's concurrency test: 16 clients, 3 plain tables, ~5 s of
// mixed reads and writes (the workload: test/helpers/concurrency-workload.ts).

import { concurrencySuite } from '../../helpers/concurrency-workload.js';

concurrencySuite({ dependants: false });
