// `npm run fuzz -- --seed S --seconds N`: seeded, time-bounded fuzzing of every reader (safetensors, sharded
// index, PyTorch zip/legacy + pickle interpreter, npy/npz, Hugging Face folders, merge configs). Cases run in a
// child process, one at a time, round-robin over the families; each has a CPU budget (measured by the child) and a
// wall-clock limit (enforced here: the child is killed and restarted, the case counted as a hang). Prints, per
// family, cases tried and outcomes, then crashes, hangs, CPU overruns, peak memory; exits 1 if anything failed.
//
// Options: --seed S (default: from the clock, printed) · --seconds N (default 60) · --only a,b (families) ·
// --case N (run that one case, to reproduce) · --cpu-ms N (per-case CPU budget, default 2000) · --hang-ms N
// (wall limit, default 20000) · --json (one JSON object on stdout) · --verbose (each case on stderr).
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FAMILIES } from './cases';
import type { CaseOutcome, CaseReply, CaseRequest } from './protocol';

interface Options {
  seed: number;
  seconds: number;
  families: string[];
  onlyCase?: number;
  cpuMs: number;
  hangMs: number;
  json: boolean;
  verbose: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const opts: Options = { seed: Date.now() % 2 ** 31, seconds: 60, families: Object.keys(FAMILIES), cpuMs: 2000, hangMs: 20_000, json: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--seed') opts.seed = Number(value()) >>> 0;
    else if (a === '--seconds') opts.seconds = Number(value());
    else if (a === '--only') opts.families = value().split(',');
    else if (a === '--case') opts.onlyCase = Number(value());
    else if (a === '--cpu-ms') opts.cpuMs = Number(value());
    else if (a === '--hang-ms') opts.hangMs = Number(value());
    else if (a === '--json') opts.json = true;
    else if (a === '--verbose') opts.verbose = true;
    else throw new Error(`unknown option ${a}`);
  }
  for (const f of opts.families) if (!(f in FAMILIES)) throw new Error(`unknown family ${f}; known: ${Object.keys(FAMILIES).join(', ')}`);
  return opts;
}

type Tally = Record<CaseOutcome | 'hang' | 'over-cpu', number> & { tried: number; maxCpuMs: number };

const newTally = (): Tally => ({ tried: 0, data: 0, refused: 0, crash: 0, accepted: 0, 'wrong-reason': 0, 'code-ran': 0, hang: 0, 'over-cpu': 0, maxCpuMs: 0 });

/** One case runner process; `run` resolves with the reply, or with 'hang' / a crash when the process fails. */
class CaseRunner {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;

  private start(): Promise<void> {
    const child = fork(join(__dirname, 'child.ts'), [], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=1024'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr?.resume();
    this.child = child;
    return new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the case runner exited during start-up (code ${code})`)));
    });
  }

  async run(request: CaseRequest, hangMs: number): Promise<CaseReply | 'hang'> {
    this.ready ??= this.start();
    await this.ready;
    const child = this.child!;
    return new Promise<CaseReply | 'hang'>((resolve) => {
      const done = (result: CaseReply | 'hang'): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(result);
      };
      const onMessage = (reply: CaseReply): void => done(reply);
      const onExit = (code: number | null, signal: string | null): void => {
        this.reset();
        done({ outcome: 'crash', cpuMs: 0, rssBytes: 0, arrayBuffers: 0, message: `the case runner died (exit ${code ?? signal}): out of memory or a native crash` });
      };
      const timer = setTimeout(() => {
        this.stop();
        done('hang');
      }, hangMs);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(request);
    });
  }

  private reset(): void {
    this.child = undefined;
    this.ready = undefined;
  }

  stop(): void {
    const child = this.child;
    this.reset();
    if (child && child.exitCode === null) {
      child.removeAllListeners('exit');
      child.kill('SIGKILL');
    }
  }

  close(): void {
    if (this.child?.connected) this.child.disconnect();
    this.reset();
  }
}

export interface FuzzSummary {
  seed: number;
  seconds: number;
  cases: number;
  families: Record<string, Tally>;
  crashes: number;
  hangs: number;
  overCpu: number;
  violations: number;
  peakRssBytes: number;
  peakArrayBuffers: number;
  maxCpuMs: number;
  failures: { family: string; index: number; outcome: string; message?: string }[];
}

async function fuzz(opts: Options): Promise<FuzzSummary> {
  const runner = new CaseRunner();
  const tallies: Record<string, Tally> = Object.fromEntries(opts.families.map((f) => [f, newTally()]));
  const failures: FuzzSummary['failures'] = [];
  let peakRss = 0;
  let peakArrayBuffers = 0;
  const started = Date.now();
  let index = opts.onlyCase ?? 0;
  try {
    // Round-robin, so a short run still covers every family; case i's randomness depends only on (seed, i).
    while (opts.onlyCase !== undefined ? index === opts.onlyCase : Date.now() - started < opts.seconds * 1000) {
      const family = opts.families[index % opts.families.length]!;
      const caseStarted = Date.now();
      const reply = await runner.run({ family, seed: opts.seed, index }, opts.hangMs);
      if (opts.verbose) {
        const what = reply === 'hang' ? 'hang' : `${reply.outcome} ${reply.cpuMs.toFixed(0)} ms CPU: ${(reply.message ?? '').split('\n')[0]!.slice(0, 160)}`;
        console.error(`${family} #${index} (${Date.now() - caseStarted} ms): ${what}`);
      }
      const tally = tallies[family]!;
      tally.tried++;
      if (reply === 'hang') {
        tally.hang++;
        failures.push({ family, index, outcome: 'hang', message: `no answer within ${opts.hangMs} ms` });
      } else {
        tally[reply.outcome]++;
        tally.maxCpuMs = Math.max(tally.maxCpuMs, reply.cpuMs);
        peakRss = Math.max(peakRss, reply.rssBytes);
        peakArrayBuffers = Math.max(peakArrayBuffers, reply.arrayBuffers);
        if (reply.outcome !== 'data' && reply.outcome !== 'refused') failures.push({ family, index, outcome: reply.outcome, ...(reply.message ? { message: reply.message } : {}) });
        if (reply.cpuMs > opts.cpuMs) {
          tally['over-cpu']++;
          failures.push({ family, index, outcome: 'over-cpu', message: `${reply.cpuMs.toFixed(0)} ms of CPU (budget ${opts.cpuMs} ms)` });
        }
      }
      index++;
    }
  } finally {
    runner.close();
  }
  const sum = (k: keyof Tally): number => Object.values(tallies).reduce((s, t) => s + t[k], 0);
  return {
    seed: opts.seed,
    seconds: (Date.now() - started) / 1000,
    cases: sum('tried'),
    families: tallies,
    crashes: sum('crash'),
    hangs: sum('hang'),
    overCpu: sum('over-cpu'),
    violations: sum('accepted') + sum('wrong-reason') + sum('code-ran'),
    peakRssBytes: peakRss,
    peakArrayBuffers,
    maxCpuMs: Math.max(0, ...Object.values(tallies).map((t) => t.maxCpuMs)),
    failures,
  };
}

function printTable(s: FuzzSummary): void {
  const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const rows = Object.entries(s.families).map(([f, t]) => [f, t.tried, t.data, t.refused, t.crash, t.hang, t['over-cpu'], t.accepted + t['wrong-reason'] + t['code-ran'], t.maxCpuMs.toFixed(0)]);
  const head = ['family', 'tried', 'data', 'refused', 'crash', 'hang', 'over-cpu', 'violations', 'max cpu ms'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: readonly unknown[]): string => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ');
  console.log(`seed ${s.seed}, ${s.seconds.toFixed(1)} s, ${s.cases} cases`);
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`crashes ${s.crashes}, hangs ${s.hangs}, over CPU budget ${s.overCpu}, violations ${s.violations}; peak RSS of the case runner ${mb(s.peakRssBytes)}, peak array buffers ${mb(s.peakArrayBuffers)}, slowest case ${s.maxCpuMs.toFixed(0)} ms CPU`);
  for (const f of s.failures.slice(0, 20)) console.log(`FAIL ${f.family} case ${f.index} (reproduce: --seed ${s.seed} --only ${f.family} --case ${f.index}): ${f.outcome}: ${f.message ?? ''}`);
}

if (require.main === module) {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  void fuzz(opts).then((summary) => {
    if (opts.json) console.log(JSON.stringify(summary, null, 2));
    else printTable(summary);
    process.exitCode = summary.crashes + summary.hangs + summary.overCpu + summary.violations > 0 ? 1 : 0;
  });
}
