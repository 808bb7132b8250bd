// A job worker that dies mid-merge: it runs the real worker (src/jobs/worker.ts) and, as soon as a temporary
// output file appears in the folder named by AWD_TEST_CRASH_WHEN_TEMP_IN, ends its thread without any cleanup — as
// a native crash or an out-of-memory kill of the worker would.
import { readdirSync } from 'node:fs';
import '../../src/jobs/worker';

const watched = process.env['AWD_TEST_CRASH_WHEN_TEMP_IN'];
if (watched) {
  const timer = setInterval(() => {
    let names: string[] = [];
    try {
      names = readdirSync(watched);
    } catch {
      return;
    }
    if (names.some((n) => n.includes('.tmp-'))) {
      clearInterval(timer);
      // In a worker thread, process.exit ends the thread only: no finally block, no abort() of the writer runs.
      process.exit(9);
    }
  }, 2);
}
