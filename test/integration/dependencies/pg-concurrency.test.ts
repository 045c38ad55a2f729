// Issue 7: the core issue's concurrency test on a schema where every table
// has a view over it and a child with ON DELETE CASCADE (read through a view
// of its own): reads through views and of cascaded rows must stay clean.

import { concurrencySuite } from '../../helpers/concurrency-workload.js';

concurrencySuite({ dependants: true });
